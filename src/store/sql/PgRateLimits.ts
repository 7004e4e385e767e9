/**
 * The rate-limit steps on PostgreSQL, one round trip each: two functions, installed
 * by the `2_rate_limits` migration (acquire replaced by `5_rate_refusal_remaining`),
 * that lock every bucket of a request (made first when missing, then locked in name
 * order, so two requests never deadlock), decide, and write, inside the caller's
 * statement. Row locks are held for the function's
 * run only, never across a network round trip, which is what bounds the rate of one
 * hot bucket.
 *
 * Commits of these steps do not wait for the disk (`synchronous_commit = off` for the
 * step's own transaction, unless it runs inside a caller's transaction): a counter is
 * not money, and a database crash then forgets at most the last fraction of a second of
 * counting, so a few more requests pass right after it. Without this every step on a
 * hot bucket would hold that bucket's lock for a disk flush, which bounds the rate of a
 * busy key to the disk's flushes per second.
 *
 * They repeat `RateArithmetic.ts` line for line in `float8` (IEEE doubles, the same
 * results as JavaScript); the conformance suite runs the same cases on every store.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"

const PROLOGUE = `
  IF p_async THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  INSERT INTO tb_rate_buckets (bucket, tat)
    SELECT b, p_now FROM (SELECT DISTINCT unnest(p_buckets) AS b) AS wanted ORDER BY b
    ON CONFLICT (bucket) DO NOTHING;
  PERFORM 1 FROM tb_rate_buckets WHERE bucket = ANY(p_buckets) ORDER BY bucket FOR UPDATE;`

const INTERVAL = `CREATE OR REPLACE FUNCTION tb_rate_interval(p_limit float8) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$ SELECT greatest(1, floor(122880000 / p_limit + 0.5)) * (1::float8 / 2048) $$`

// Returns {1, remaining...} when admitted, {0, index, retryAfterMillis, remaining...} when
// refused, where a refusal's remaining is every rule's before the request (it counts nothing).
const ACQUIRE = `CREATE OR REPLACE FUNCTION tb_rate_acquire(
  p_buckets text[], p_kinds text[], p_limits float8[], p_tokens float8,
  p_now float8, p_lease_millis float8, p_ticket text, p_async boolean
) RETURNS float8[] LANGUAGE plpgsql AS $$
DECLARE
  n int := coalesce(array_length(p_buckets, 1), 0);
  tats float8[] := array_fill(NULL::float8, ARRAY[n]);
  lives int[] := array_fill(NULL::int, ARRAY[n]);
  remaining float8[] := '{}';
  refused int;
  retry float8;
  i int; j int;
  lim float8; cost float8; iv float8; burst float8; t float8; base float8; nxt float8; live int;
BEGIN
  ${PROLOGUE}
  FOR i IN 1..n LOOP
    lim := p_limits[i];
    t := NULL;
    live := NULL;
    -- A bucket named twice in one request continues from its earlier rule.
    FOR j IN 1..i - 1 LOOP
      IF p_buckets[j] = p_buckets[i] THEN
        t := coalesce(tats[j], t);
        live := coalesce(lives[j], live);
      END IF;
    END LOOP;
    IF p_kinds[i] = 'parallel' THEN
      IF live IS NULL THEN
        DELETE FROM tb_rate_leases WHERE bucket = p_buckets[i] AND expires_at <= p_now;
        SELECT count(*) INTO live FROM tb_rate_leases WHERE bucket = p_buckets[i];
      END IF;
      IF live >= lim THEN
        refused := i - 1;
        retry := 1000;
        EXIT;
      END IF;
      lives[i] := live + 1;
      remaining := remaining || (lim - live - 1);
    ELSE
      IF t IS NULL THEN
        SELECT tat INTO t FROM tb_rate_buckets WHERE bucket = p_buckets[i];
      END IF;
      cost := CASE WHEN p_kinds[i] = 'requests' THEN 1 ELSE p_tokens END;
      iv := tb_rate_interval(lim);
      burst := lim * iv;
      base := greatest(t, p_now);
      nxt := base + cost * iv;
      IF cost > lim OR nxt - p_now > burst THEN
        refused := i - 1;
        retry := CASE WHEN cost > lim THEN 60000 ELSE nxt - p_now - burst END;
        EXIT;
      END IF;
      tats[i] := nxt;
      remaining := remaining || greatest(0, floor((burst - (nxt - p_now)) / iv));
    END IF;
  END LOOP;
  IF refused IS NOT NULL THEN
    -- Every rule as stored, read again: a bucket named twice must not see the earlier rule's units.
    remaining := '{}';
    FOR i IN 1..n LOOP
      lim := p_limits[i];
      IF p_kinds[i] = 'parallel' THEN
        SELECT count(*) INTO live FROM tb_rate_leases WHERE bucket = p_buckets[i] AND expires_at > p_now;
        remaining := remaining || greatest(0, lim - live);
      ELSE
        SELECT tat INTO t FROM tb_rate_buckets WHERE bucket = p_buckets[i];
        iv := tb_rate_interval(lim);
        remaining := remaining || greatest(0, floor((lim * iv - (greatest(t, p_now) - p_now)) / iv));
      END IF;
    END LOOP;
    RETURN ARRAY[0, refused, retry]::float8[] || remaining;
  END IF;
  FOR i IN 1..n LOOP
    IF p_kinds[i] = 'parallel' THEN
      INSERT INTO tb_rate_leases (bucket, ticket_id, expires_at)
        VALUES (p_buckets[i], p_ticket, (p_now + p_lease_millis)::bigint)
        ON CONFLICT (bucket, ticket_id) DO UPDATE SET expires_at = excluded.expires_at;
    ELSE
      UPDATE tb_rate_buckets SET tat = tats[i] WHERE bucket = p_buckets[i];
    END IF;
  END LOOP;
  RETURN ARRAY[1]::float8[] || remaining;
END $$`

const COMPLETE = `CREATE OR REPLACE FUNCTION tb_rate_complete(
  p_buckets text[], p_kinds text[], p_limits float8[], p_delta float8, p_refund boolean,
  p_now float8, p_ticket text, p_async boolean
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  i int;
  units float8;
BEGIN
  ${PROLOGUE}
  FOR i IN 1..coalesce(array_length(p_buckets, 1), 0) LOOP
    IF p_kinds[i] = 'parallel' THEN
      DELETE FROM tb_rate_leases
        WHERE bucket = p_buckets[i] AND (ticket_id = p_ticket OR expires_at <= p_now);
    ELSE
      units := CASE WHEN p_kinds[i] = 'tokens' THEN p_delta WHEN p_refund THEN -1 ELSE 0 END;
      IF units <> 0 THEN
        UPDATE tb_rate_buckets
          SET tat = greatest(greatest(tat, p_now) + units * tb_rate_interval(p_limits[i]), p_now)
          WHERE bucket = p_buckets[i];
      END IF;
    END IF;
  END LOOP;
END $$`

/**
 * Creates (or replaces) the functions, as they are now; the `2_rate_limits` migration.
 * They need only that migration's tables, so a database made today gets today's
 * functions at once, and {@link replaceAcquire} later leaves them as they are.
 *
 * @since 0.1.0
 */
export const install = (sql: SqlClient): Effect.Effect<void, SqlError> =>
  Effect.all([sql.unsafe(INTERVAL), sql.unsafe(ACQUIRE), sql.unsafe(COMPLETE)], { discard: true })

/**
 * Replaces `tb_rate_acquire` with the one whose refusals report every rule's remaining
 * units: the `5_rate_refusal_remaining` migration, for databases made before it.
 *
 * @since 0.1.0
 */
export const replaceAcquire = (sql: SqlClient): Effect.Effect<void, SqlError> =>
  Effect.asVoid(sql.unsafe(ACQUIRE))
