"""Turn a recorded ``user.getRecentTracks`` body into a simulated history.

Everything the simulator needs to serve the same body again is kept: URLs, image names,
MBIDs, ``loved``, the now-playing entry and the user name. Rendering it back through
``sim.render`` gives the recorded body key for key, which is how the tests prove the
simulator's wire format is Last.fm's.
"""

from __future__ import annotations

from typing import Any

from musiqued.sim.history import ARTIST_PLACEHOLDER, Album, Artist, History, Track


def _image_name(images: Any) -> str:
    if not isinstance(images, list) or not images:
        return ""
    url = str(images[0].get("#text") or "")
    return url.rsplit("/", 1)[-1] if url else ""


def _track(entry: dict[str, Any], artists: dict[str, Artist], albums: dict[Any, Album]) -> Track:
    raw_artist = entry["artist"]
    name = str(raw_artist.get("name") or raw_artist.get("#text") or "")
    artist = artists.get(name.casefold())
    if artist is None:
        artist = Artist(
            name=name,
            mbid=str(raw_artist.get("mbid") or ""),
            image=_image_name(raw_artist.get("image")) or ARTIST_PLACEHOLDER,
            url=str(raw_artist.get("url") or ""),
        )
        artists[name.casefold()] = artist
    raw_album = entry.get("album") or {}
    title = str(raw_album.get("#text") or "")
    album_mbid = str(raw_album.get("mbid") or "")
    image = _image_name(entry.get("image"))
    album: Album | None = None
    if title:
        key = (name.casefold(), title.casefold())
        album = albums.get(key)
        if album is None:
            album = albums[key] = Album(artist=artist, title=title, mbid=album_mbid, image=image)
    return Track(
        artist=artist,
        title=str(entry["name"]),
        album=album if album is not None and album.mbid == album_mbid else None,
        album_title=title,
        album_mbid=album_mbid,
        mbid=str(entry.get("mbid") or ""),
        loved=entry.get("loved") == "1",
        image=image,
        url=str(entry.get("url") or ""),
    )


def parse_recorded(data: dict[str, Any]) -> tuple[History, dict[str, Any]]:
    body = data["recenttracks"]
    entries = body.get("track") or []
    if isinstance(entries, dict):
        entries = [entries]
    artists: dict[str, Artist] = {}
    albums: dict[Any, Album] = {}
    listens: list[tuple[int, Track]] = []
    extras: dict[str, Any] = {"username": body.get("@attr", {}).get("user", "")}
    for entry in entries:
        track = _track(entry, artists, albums)
        if (entry.get("@attr") or {}).get("nowplaying") == "true":
            extras["now_playing_track"] = track
        else:
            listens.append((int(entry["date"]["uts"]), track))
    return History.from_listens(listens), extras
