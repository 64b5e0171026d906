"""D3: the dialer engine. Drains a dialer's outbound spool exactly once, paced, across any number of workers.

Where things are: `claim` (the atomic claim), `sending` (the hot path: `drain`), `sender` (one job's
pacing, ports, rate-limit and concurrency machinery), `gateway` (the adapter, send settings and budget,
the providers' shared rate limits), `reconcile` (rows whose lease expired), `actions` (the dashboard's
start/stop/cancel/single message/review), `counts` (the dashboard figures and their live event),
`delivery` (delivery receipts). The settings are in `config.py` (DIALER_*, PROVIDER_*).

How a message goes out, and why nothing can send it twice:

1. **Claim** (`claim.claim_batch`): one atomic statement takes up to 50 TO PROCESS rows nobody holds
   (`lease_until` empty or past) in priority-then-entry order and stamps them with the worker's
   `lease_owner` and a `lease_until`. PostgreSQL picks with `FOR UPDATE SKIP LOCKED`; SQLite
   serialises writers, and the same single `UPDATE … WHERE id IN (SELECT … LIMIT n)` is atomic there.
2. **In flight**: before any request, a small group of claimed rows is marked in flight in ONE commit
   (`in_flight_at`, `attempts + 1`, a longer lease), guarded by `lease_owner = me AND state = 1 AND
   in_flight_at IS NULL`; a row the guard misses is someone else's and is skipped.
3. **Send**: each message waits for its pacing slot (Redis, shared by all workers), then goes out on the
   next port in turn; one adapter (one pooled HTTP session) serves the whole job. Unpaced, against a
   distant gateway (each request mostly waits), `pipeline.send_windowed` keeps many requests in flight:
   it claims small chunks already marked in flight as its window (`window.Window`, AIMD on latency and
   429s) has room, and records each chunk in one commit once all its requests are answered.
4. **Record**: the group's results are written in ONE commit (SENT / BLOCKED / FAILED / back to the pool).

Grouping (2 and 4) keeps commits at two per group instead of two per message. What a crash can do: a
worker killed between 2 and 4 leaves its group in flight; once the in-flight lease expires,
`reconcile.reconcile_expired` asks the provider about each one (`adapter.lookup`): FOUND → SENT,
NOT_FOUND → sent again, UNKNOWN → a supervisor decides. So a group is only as big as the provider can
reconcile: up to 50 (or the gateway's batch) when the adapter can look messages up, one message when it
cannot. The in-flight lease covers the time a live worker may still be sending: it starts no request
later than `DIALER_LEASE_SECONDS` after the mark, and each request (with the adapter's own retries) ends
within the send budget; so reconcile never looks up a message whose request may still be on its way.

Ports (`dialer.ports`, from the dial string) are taken in turn across all workers from a Redis counter
(`INCR conversa:dialer:<id>:port` mod the number of ports).

Rate limits are not failures. A 429 (Twilio 20429, Meta 130429, …) means the gateway did not process the
request: the message goes back to TO PROCESS with its attempt given back and a not-before time, and the
provider's shared limit in Redis (`pacing.GatewayLimits`) stops every worker on that provider for at least
Retry-After (longer as refusals repeat), then paces them all, one message at a time, speeding up again as
requests go through. A job waits a limit out with nothing claimed and only within its time budget; past
it, the job ends and the clock starts the next one when the wait is over, so no thread blocks and no lease
outlives its expiry. The dashboard says so while it lasts (`counts.status().limit`). A per-recipient limit
(Meta 131056, Twilio 14107) holds back that one message only. Only real errors end a message FAILED: a
refusal that is not a rate limit, or DIALER_MAX_ATTEMPTS temporary failures (5xx, timeouts).
"""
