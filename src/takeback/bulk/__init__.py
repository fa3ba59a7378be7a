"""Bulk hashing and matching on Ray, for an organisation's own backlog.

Who this is for: a platform sweeping hundreds of millions of uploads against the protected lists, or an
organisation hashing an archive it holds. It is **not** for a person's private photos: those are hashed on her own
device (`takeback hash` without `--ray`), because sending them to a cluster would copy them to other machines.
A Ray cluster reads the files from storage every node can see (a shared file system or object store mount) and
only hashes travel back to the driver.

Modules:

* `cluster` — connect to a Ray cluster (or start a private local one) without dashboard, usage statistics or
  network exposure beyond the cluster itself; start a head node in a subprocess (tests, benchmarks);
* `window` — the back-pressure loop: chunks of work as Ray tasks, at most `window` in flight, results in order
  of completion, a crashed chunk retried file by file so one bad file never loses the others;
* `ray_hash` — `takeback hash --ray`: the same hash list as the local hasher, computed on the cluster;
* `url_hash` — fetch URLs through the guarded fetcher inside the Ray workers and hash what came back;
* `sweep` — hash a collection or a URL list and match it against banks (a match service or a local store),
  writing matches as JSON lines while the results stream in.

Ray is an optional dependency: `pip install 'takeback[scale]'`.
"""
