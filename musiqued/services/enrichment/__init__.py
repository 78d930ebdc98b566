"""Album and artist enrichment: the worker (``worker``), its sources (``sources``), and the
AI prompt (``prompt``)."""

from musiqued.services.enrichment.worker import Enricher, EnrichmentSections

__all__ = ["Enricher", "EnrichmentSections"]
