"""The optional HTTP front end (``[http] listen``): the original application's API.

Imported only when the listener is configured: ``aiohttp.web`` is not loaded otherwise.
"""
