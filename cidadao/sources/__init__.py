"""Live sources: resumable, rate-limited fetchers for the Portal da Transparência and PNCP.

:func:`fetch_portal` and :func:`fetch_pncp` page through the contract endpoints with one pooled
client from :func:`build_client` and append the records as JSON Lines that ``cidadao ingest``
reads. An interrupted fetch continues where it stopped, without duplicating or losing rows.
"""

from cidadao.sources.fetch import (
    PNCP_MAX_WINDOW_DAYS,
    PORTAL_PAGE_SIZE,
    USER_AGENT,
    FetchSummary,
    Progress,
    RateLimiter,
    build_client,
    fetch_pncp,
    fetch_portal,
    pncp_windows,
)

__all__ = [
    "PNCP_MAX_WINDOW_DAYS",
    "PORTAL_PAGE_SIZE",
    "USER_AGENT",
    "FetchSummary",
    "Progress",
    "RateLimiter",
    "build_client",
    "fetch_pncp",
    "fetch_portal",
    "pncp_windows",
]
