"""The common HTTP/1.1 request (a whole bodiless GET) read without the general parser."""

def parse_get(
    data: bytes, max_url: int, max_header_bytes: int, max_headers: int
) -> tuple[bytes, list[tuple[bytes, bytes]], int, bool, bool] | None: ...
