"""The prompt that asks the AI endpoint for an album's description."""

from __future__ import annotations

from musiqued.storage.enrichment import AlbumFacts

LANGUAGES = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "it": "Italian",
    "es": "Spanish",
    "pt": "Portuguese",
    "nl": "Dutch",
    "rm": "Romansh",
}


def build_prompt(facts: AlbumFacts, language: str) -> list[dict[str, str]]:
    """Messages asking for a short description grounded in what we know."""
    tongue = LANGUAGES.get(language.lower(), language)
    system = (
        "You write short descriptions of music albums for a personal listening-history app. "
        "Use only the facts you are given and general knowledge you are sure of; never invent "
        "dates, band members, labels, chart positions or quotes. If the facts are thin, stay "
        f"general. Answer in {tongue}, in 2 to 4 sentences of plain text, with no title, "
        "no markdown and no preamble."
    )
    lines = [f"Artist: {facts.artist}", f"Album: {facts.title}"]
    if facts.year:
        lines.append(f"Year: {facts.year}")
    if facts.tracks:
        played = "; ".join(f"{title} ({n} listens)" for title, n in facts.tracks)
        lines.append(f"Tracks listened: {played}")
    if facts.listens:
        lines.append(f"Total listens: {facts.listens}")
    if facts.wiki_summary:
        lines.append(f"Last.fm summary: {facts.wiki_summary}")
    user = "Describe this album for its listener.\n\n" + "\n".join(lines)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
