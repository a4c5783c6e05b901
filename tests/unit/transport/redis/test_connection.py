"""Redis URLs: the password never shows (whatever the URL's shape), and a URL redis-py would
misread is refused with a message instead of a traceback."""

from __future__ import annotations

import pytest

from rlfleet.errors import ConfigError
from rlfleet.transport.redis.connection import connect, redact_url

PW = "Sup3r-s3cret"


@pytest.mark.parametrize(
    "url, shown",
    [
        (f"redis://:{PW}@h:6379/0", "redis://:***@h:6379/0"),
        (f"rediss://alice:{PW}@h.example:6380/2", "rediss://alice:***@h.example:6380/2"),
        (f"redis://{PW}@h/0", "redis://***@h/0"),  # no colon: still a secret
        (f"redis:/:{PW}@h", "redis:***@h"),  # one slash: no host part to parse
        (f"redis://:{PW}@h:abc/0", "redis://:***@h:abc/0"),  # bad port: urlsplit.port raises
        (f"redis://:{PW}@h:99999/0", "redis://:***@h:99999/0"),
        (f"redis://:{PW}@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
        (f"redis://h:6379/0?password={PW}", "redis://h:6379/0?password=***"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("redis://h/0?ssl_ca_certs=/p@th/ca.pem", "redis://h/0?ssl_ca_certs=/p@th/ca.pem"),
    ],
)
def test_redaction_hides_the_password_and_never_raises(url, shown):
    assert redact_url(url) == shown
    assert PW not in redact_url(url)


@pytest.mark.parametrize(
    "url, needle",
    [
        (f"redis:/:{PW}@localhost", "names no host"),
        (f"redis://:{PW}@localhost:abc/0", r"is malformed \(Port could not be cast"),
        (f"redis://:{PW}@localhost:70000/0", r"is malformed \(Port out of range"),
        (f"redis://:{PW}@[::1/0", "is malformed"),
        (f"http://:{PW}@localhost/0", "has scheme 'http'"),
    ],
)
def test_malformed_urls_are_refused_with_a_message_that_hides_the_password(url, needle):
    with pytest.raises(ConfigError, match=needle) as caught:
        connect(url, wait=0.0)
    assert PW not in str(caught.value)
    assert "redis" in str(caught.value).rpartition(";")[2], "the message shows the valid form"
