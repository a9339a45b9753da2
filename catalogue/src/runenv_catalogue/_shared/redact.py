"""URLs as they may be shown: every URL that goes into a message, a log line or a file a user
can read (runenv's and the catalogue's alike) goes through `redact`."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

_SECRET_PARAM = re.compile(r"token|key|sig|secret|pass|auth|cred|session", re.IGNORECASE)
_USERINFO = re.compile(r"(//)[^/@?#\s]*@")


def redact(url: str) -> str:
    """`url` with its user info and secret-looking query values replaced by `***`.

    Plain paths come back unchanged.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_userinfo(url)
    if not parts.scheme or len(parts.scheme) == 1:  # a path, or a Windows drive letter
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAM.search(k) for k, _ in pairs):
            query = urlencode(
                [(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*"
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_userinfo(text: str) -> str:
    """`text` with the user info of every URL in it (`//user:pass@`) replaced by `***`."""
    return _USERINFO.sub(r"\1***@", text)


def scrub(text: str, url: str) -> str:
    """`text` (a library's error message about `url`) with `url`'s credentials removed, wherever
    the library echoed them: urllib and http.client put the password in "nonnumeric port:
    'secret@host'" for `http://user:secret@host/`."""
    text = text.replace(url, redact(url))
    try:
        parts = urlsplit(url)
        secrets = [parts.username, parts.password]
    except ValueError:
        secrets = []
    for secret in secrets:
        if secret:
            for form in {secret, unquote(secret)}:
                if len(form) >= 3:
                    text = text.replace(form, "***")
    return redact_userinfo(text)
