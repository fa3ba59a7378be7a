"""Finding protected content and names on the web: safe fetching (SSRF guard), crawling, extraction."""
