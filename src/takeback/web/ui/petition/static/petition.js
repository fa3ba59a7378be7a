// Petition page: solve the proof-of-work (ALTCHA format) with WebCrypto, sign, and keep the count live.
(function () {
  "use strict";
  const encoder = new TextEncoder();

  async function sha256hex(text) {
    const digest = await crypto.subtle.digest("SHA-256", encoder.encode(text));
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function solve(challenge) {
    for (let n = 0; n <= challenge.maxnumber; n++) {
      if ((await sha256hex(challenge.salt + n)) === challenge.challenge) return n;
    }
    throw new Error("the anti-bot puzzle could not be solved; please reload the page");
  }

  function format(n) { return Number(n).toLocaleString("en"); }

  // Bumped whenever the page shows counts it knows to be newer (the signing answer's): a periodic refresh that was
  // already under way then carries older figures and is dropped, so the count never steps back.
  let epoch = 0;

  function show(counts) {
    const verified = document.getElementById("verified-count");
    const pending = document.getElementById("pending-count");
    const progress = document.getElementById("progress");
    if (verified) verified.textContent = format(counts.verified);
    if (pending) pending.textContent = format(counts.pending);
    if (progress) progress.value = Math.min(counts.verified, counts.goal);
  }

  async function refresh(section) {
    if (!section) return;
    const started = epoch;
    try {
      const response = await fetch(section.dataset.countsUrl, { cache: "no-store" });
      if (!response.ok) return;
      const counts = await response.json();
      if (started === epoch) show(counts);
    } catch (e) { /* offline: keep the last figures */ }
  }

  const section = document.querySelector("[data-counts-url]");
  if (section) setInterval(() => refresh(section), 5000);

  const form = document.getElementById("sign-form");
  if (!form) return;
  const status = document.getElementById("sign-status");
  const button = document.getElementById("sign-button");
  const slug = form.dataset.slug;
  const idempotencyKey = (crypto.randomUUID && crypto.randomUUID()) || String(Math.random()).slice(2);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    status.textContent = "Checking you are not a robot (a few seconds, no tracking)…";
    try {
      const challenge = await (await fetch(`/v1/petitions/${slug}/challenge`, { cache: "no-store" })).json();
      const number = await solve(challenge);
      const pow = btoa(JSON.stringify({
        algorithm: challenge.algorithm, challenge: challenge.challenge, number: number,
        salt: challenge.salt, signature: challenge.signature,
      }));
      const data = new FormData(form);
      const body = {
        name: data.get("name") || "", email: data.get("email") || "", country: data.get("country") || "",
        postcode: data.get("postcode") || null, comment: data.get("comment") || null,
        consent_public: data.get("consent_public") === "on", consent_updates: data.get("consent_updates") === "on",
        pow: pow, idempotency_key: idempotencyKey,
      };
      status.textContent = "Saving your signature…";
      const response = await fetch(`/v1/petitions/${slug}/signatures`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      const answer = await response.json();
      if (response.ok) {
        // The counts first (the answer carries them as of the commit that stored this signature), then the
        // message, in one step: whoever reads "thank you" already sees a count that includes their signature.
        epoch++;
        if (answer.counts) show(answer.counts); else await refresh(section);
        status.textContent = answer.message;
        form.querySelectorAll("input, select, textarea").forEach((el) => { el.disabled = true; });
        return;
      }
      status.textContent = (answer.error && answer.error.message) || "Something went wrong; please try again.";
    } catch (e) {
      status.textContent = e.message || "The server could not be reached; please try again.";
    }
    button.disabled = false;
  });
})();
