"""`takeback serve --demo`: a complete, benign demo case, so a new user sees every dashboard page populated.

Everything is made up and harmless: the "protected photos" are scikit-image's bundled public-domain photos (never
real intimate imagery), the person is fictional, the web site is a loopback server the demo starts itself, the
domain feed is a recording shipped with the package, and mail goes to a local sink that keeps messages as files.

* ``story``    — who the demo person is, her names, the account, the notices' and petition's words (the plot);
* ``media``    — the protected photos and the altered copies planted on the site;
* ``pages``    — what the demo site holds (pages, planted copies, unrelated pictures, robots.txt, sitemap);
* ``site``     — the loopback server for those pages (taken-down pages answer 410, remembered across restarts);
* ``feed``     — the recorded certstream-style domain feed, replayed as if it had arrived over the last days;
* ``mailsink`` — a local SMTP server (aiosmtpd) that writes what it receives to a folder;
* ``protect``, ``takedown``, ``petition``, ``operator`` — one part of the seeding each;
* ``seed``     — the idempotent seeding of a database, step by step;
* ``run``      — what `serve --demo` does around uvicorn: the demo data dir, the site, the sink, the allow-list.
"""
