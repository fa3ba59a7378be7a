"""`takeback serve --demo`: a complete, benign demo case, so a new user sees every dashboard page populated.

Everything is made up and harmless: the "protected photos" are scikit-image's bundled public-domain photos (never
real intimate imagery), the person is fictional, the web site is a loopback server the demo starts itself, the
domain feed is a recording shipped with the package, and mail goes to a local sink that keeps messages as files.

* ``story``  — who the demo person is, her names, the account, the petition's words (one place to read the plot);
* ``media``  — the protected photos and the transformed copies planted on the site;
* ``site``   — the loopback demo web site (pages, planted copies, taken-down pages answering 410);
* ``feed``   — the recorded certstream-style domain feed, replayed as if it had arrived over the last days;
* ``mailsink`` — a local SMTP server (aiosmtpd) that writes what it receives to a folder;
* ``seed``   — the idempotent seeding of the database (account, case, bank, scan, watch, notices, petition, inbox);
* ``run``    — what `serve --demo` does around uvicorn: the demo data dir, the site, the sink, the allow-list.
"""
