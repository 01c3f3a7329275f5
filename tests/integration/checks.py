"""Assertions shared by the test files."""

import rawhttp


def split_raw(raw):
    """(status_line, headers, body bytes) of a raw Content-Length or
    close-delimited response as a backend wrote it."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, "no end of head in %r" % raw[:200]
    _, _, _, status_line, headers = rawhttp.parse_head(head + b"\r\n\r\n")
    return status_line, headers, body


def assert_relayed(resp, sent_raw, body=None):
    """The client's response `resp` is what the backend sent (`sent_raw`):
    same status line, same end-to-end headers in the same order and
    spelling, same body bytes (pass `body` when the backend's framing was
    chunked and `sent_raw` holds chunk framing)."""
    status_line, headers, raw_body = split_raw(sent_raw)
    assert resp.status_line == status_line
    assert rawhttp.end_to_end(resp.headers) == rawhttp.end_to_end(headers)
    expected = raw_body if body is None else body
    assert len(resp.body) == len(expected)
    assert resp.body == expected


def only_request(backend, path, method=None):
    """The single request `backend` received for `path` (and `method`)."""
    reqs = [r for r in backend.received(path)
            if method is None or r.method == method]
    assert len(reqs) == 1, "%s got %d requests for %s: %r" % (
        backend.name, len(reqs), path, [(r.method, r.target) for r in reqs])
    return reqs[0]


def entry_for(entries, url):
    """The single diff-log entry for `url`."""
    found = [e for e in entries if e.get("url") == url]
    assert len(found) == 1, "%d diff-log entries for %s" % (len(found), url)
    return found[0]
