/**
 * A group-commit batch on PostgreSQL in one round trip: `tb_ledger_batch`, installed by
 * the `4_ledger_batch` migration, takes the batch's steps as arrays, locks their
 * counters in key order, decides every step in arrival order against the counters as
 * the steps before it left them, writes everything, and returns what each step came
 * to. Called outside a transaction, the call is its own transaction and its commit the
 * batch's one wait for the write-ahead log; nothing is held between round trips.
 *
 * It decides the common case only, as `PgFastPath.ts` does: every counter exists and
 * its window is current, no open hold anywhere has expired, a settled hold is open,
 * unexpired and on the same scopes, a new hold id is unused. Any other step is handed
 * back (`Fallback`) and runs alone through the usual step, which resets windows,
 * reclaims and makes counters. A hold closed or inserted under the batch aborts the
 * call (nothing written) and every step is handed back.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { DateTime, Effect, Option } from "effect"
import * as Money from "../../domain/Money.js"
import * as Counters from "./Counters.js"
import { encodeKeys } from "./Holds.js"
import type { Step, Verdict } from "./LedgerBatch.js"
import { opened } from "./PgFastPath.js"
import { RowReader } from "./RowReader.js"
import { codeOf, isUniqueViolation } from "./SqlErrors.js"

/** The error the function raises when a hold was closed under the batch. */
const CONFLICT_CODE = "TB409"

// Verdicts: 'h' held, 'r' refused, 's' settled, 'f' handed back. Each step returns a row
// with its verdict, and a decided one a row per capped counter (only a cap can refuse or
// be the tightest): before the new hold for 'h' and 'r', after the charge for 's'.
const FUNCTION = `CREATE OR REPLACE FUNCTION tb_ledger_batch(
  p_now bigint, p_kind text[], p_id text[], p_enc text[], p_first int[], p_count int[], p_keys text[],
  p_strict boolean[], p_amount bigint[], p_expires bigint[],
  l_request text[], l_key_id text[], l_key_hash text[], l_key_label text[], l_user text[], l_team text[],
  l_org text[], l_end_user text[], l_model text[], l_prompt bigint[], l_completion bigint[],
  l_started bigint[], l_status text[]
) RETURNS TABLE (o_step int, o_verdict text, o_key text, o_spend bigint, o_held bigint, o_max bigint,
  o_window_end bigint, o_windowed boolean)
LANGUAGE plpgsql AS $$
DECLARE
  n int := coalesce(array_length(p_kind, 1), 0);
  k text[]; c_total bigint[]; c_ws bigint[]; c_held bigint[]; c_max bigint[]; c_end bigint[];
  c_windowed boolean[]; c_fresh boolean[]; c_dirty boolean[];
  h_id text[]; h_enc text[]; h_amount bigint[]; h_exp bigint[]; h_state text[];
  verdict text[] := array_fill('f'::text, ARRAY[n]);
  out_step int[] := '{}'; out_key int[] := '{}'; out_spend bigint[] := '{}'; out_held bigint[] := '{}';
  out_n int := 0;
  new_n int := 0; new_step int[] := '{}'; new_held bigint[] := '{}';
  closed_n int := 0; closed_id text[] := '{}'; closed_amount bigint[] := '{}'; closed_exp bigint[] := '{}';
  log_step int[] := '{}';
  idx int[]; i int; j int; x int; hx int; ok boolean; fits boolean; v_amount bigint; v_spend bigint; done int;
BEGIN
  SELECT array_agg(scope_key ORDER BY scope_key), array_agg(total ORDER BY scope_key),
    array_agg(window_spend ORDER BY scope_key), array_agg(held ORDER BY scope_key),
    array_agg(max_budget ORDER BY scope_key), array_agg(window_end ORDER BY scope_key),
    array_agg(budget_duration IS NOT NULL ORDER BY scope_key),
    array_agg((budget_duration IS NULL OR (window_end IS NOT NULL AND window_start <= p_now
        AND p_now < window_end))
      AND total >= 0 AND window_spend >= 0 AND held >= 0 AND (max_budget IS NULL OR max_budget >= 0)
      ORDER BY scope_key)
  INTO k, c_total, c_ws, c_held, c_max, c_end, c_windowed, c_fresh
  FROM (SELECT * FROM tb_counters WHERE scope_key = ANY(p_keys) ORDER BY scope_key FOR UPDATE) locked;
  -- Every step reclaims expired holds first: the usual step does that, alone.
  IF EXISTS (SELECT 1 FROM tb_holds WHERE state = 'open' AND expires_at <= p_now) THEN
    RETURN QUERY SELECT s, 'f'::text, NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
      NULL::boolean FROM generate_series(1, n) s;
    RETURN;
  END IF;
  k := coalesce(k, '{}');
  c_dirty := array_fill(false, ARRAY[coalesce(array_length(k, 1), 0)]);
  SELECT coalesce(array_agg(hold_id), '{}'), array_agg(scope_keys), array_agg(amount), array_agg(expires_at),
    array_agg(state)
  INTO h_id, h_enc, h_amount, h_exp, h_state
  FROM tb_holds WHERE hold_id = ANY(p_id);
  FOR i IN 1..n LOOP
    ok := true;
    idx := '{}';
    FOR j IN p_first[i]..p_first[i] + p_count[i] - 1 LOOP
      x := array_position(k, p_keys[j]);
      IF x IS NULL OR NOT c_fresh[x] THEN ok := false; EXIT; END IF;
      idx := idx || x;
    END LOOP;
    CONTINUE WHEN NOT ok;
    IF p_kind[i] = 'h' THEN
      CONTINUE WHEN array_position(h_id, p_id[i]) IS NOT NULL;
      fits := true;
      FOREACH x IN ARRAY idx LOOP
        CONTINUE WHEN c_max[x] IS NULL;
        v_spend := CASE WHEN c_windowed[x] THEN c_ws[x] ELSE c_total[x] END;
        out_n := out_n + 1; out_step[out_n] := i; out_key[out_n] := x;
        out_spend[out_n] := v_spend; out_held[out_n] := c_held[x];
        IF (p_strict[i] AND v_spend + c_held[x] + p_amount[i] > c_max[x])
          OR (NOT p_strict[i] AND v_spend >= c_max[x]) THEN
          fits := false;
        END IF;
      END LOOP;
      IF NOT fits THEN verdict[i] := 'r'; CONTINUE; END IF;
      verdict[i] := 'h';
      v_amount := CASE WHEN p_strict[i] THEN p_amount[i] ELSE 0 END;
      IF v_amount <> 0 THEN
        FOREACH x IN ARRAY idx LOOP c_held[x] := c_held[x] + v_amount; c_dirty[x] := true; END LOOP;
      END IF;
      new_n := new_n + 1; new_step[new_n] := i; new_held[new_n] := v_amount;
      h_id := h_id || p_id[i]; h_enc := h_enc || p_enc[i]; h_amount := h_amount || v_amount;
      h_exp := h_exp || p_expires[i]; h_state := h_state || 'new'::text;
    ELSE
      hx := array_position(h_id, p_id[i]);
      CONTINUE WHEN hx IS NULL OR h_state[hx] <> 'open' OR h_exp[hx] <= p_now OR h_enc[hx] <> p_enc[i];
      verdict[i] := 's';
      FOREACH x IN ARRAY idx LOOP
        c_held[x] := greatest(c_held[x] - h_amount[hx], 0);
        c_total[x] := c_total[x] + p_amount[i];
        c_ws[x] := c_ws[x] + p_amount[i];
        c_dirty[x] := true;
        IF c_max[x] IS NOT NULL THEN
          out_n := out_n + 1; out_step[out_n] := i; out_key[out_n] := x;
          out_spend[out_n] := CASE WHEN c_windowed[x] THEN c_ws[x] ELSE c_total[x] END;
          out_held[out_n] := c_held[x];
        END IF;
      END LOOP;
      h_state[hx] := 'settled';
      closed_n := closed_n + 1; closed_id[closed_n] := p_id[i];
      closed_amount[closed_n] := h_amount[hx]; closed_exp[closed_n] := h_exp[hx];
      log_step[closed_n] := i;
    END IF;
  END LOOP;

  UPDATE tb_counters c SET total = c_total[v.x], window_spend = c_ws[v.x], held = c_held[v.x]
  FROM generate_subscripts(k, 1) AS v(x) WHERE c_dirty[v.x] AND c.scope_key = k[v.x];
  INSERT INTO tb_holds (hold_id, scope_keys, amount, expires_at, state)
  SELECT p_id[new_step[o]], p_enc[new_step[o]], new_held[o], p_expires[new_step[o]], 'open'
  FROM generate_subscripts(new_step, 1) AS o;
  UPDATE tb_holds h SET state = 'settled', closed_at = p_now
  FROM generate_subscripts(closed_id, 1) AS v(o)
  WHERE h.hold_id = closed_id[v.o] AND h.state = 'open' AND h.amount = closed_amount[v.o]
    AND h.expires_at = closed_exp[v.o];
  GET DIAGNOSTICS done = ROW_COUNT;
  IF done <> closed_n THEN
    RAISE EXCEPTION 'a hold was closed under the ledger batch' USING ERRCODE = '${CONFLICT_CODE}';
  END IF;
  INSERT INTO tb_spend_logs (request_id, key_id, key_hash, key_label, user_id, team_id, organization_id,
    end_user, model, prompt_tokens, completion_tokens, cost, started_at, ended_at, status)
  SELECT l_request[s], l_key_id[s], l_key_hash[s], l_key_label[s], l_user[s], l_team[s], l_org[s],
    l_end_user[s], l_model[s], l_prompt[s], l_completion[s], p_amount[s], l_started[s], p_now, l_status[s]
  FROM unnest(log_step) AS s;

  RETURN QUERY
    SELECT s, verdict[s], NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::boolean
    FROM generate_series(1, n) s
    UNION ALL
    SELECT out_step[o], verdict[out_step[o]], k[out_key[o]], out_spend[o], out_held[o], c_max[out_key[o]],
      c_end[out_key[o]], c_windowed[out_key[o]]
    FROM generate_subscripts(out_step, 1) o WHERE verdict[out_step[o]] <> 'f';
END $$`

/**
 * Installs (or replaces) `tb_ledger_batch`: the `4_ledger_batch` migration.
 *
 * @since 0.1.0
 */
export const install = (sql: SqlClient): Effect.Effect<void, SqlError> => Effect.asVoid(sql.unsafe(FUNCTION))

const FALLBACK: Verdict = { _tag: "Fallback" }

/** A capped counter as the call reported it; undefined when a column does not decode. */
const viewOf = (row: Record<string, unknown>): Counters.View | undefined => {
  const read = new RowReader(row)
  const windowed = row["o_windowed"] === true
  const view: Counters.View = {
    key: read.string("o_key"),
    spend: read.money("o_spend"),
    held: read.money("o_held"),
    maxBudget: read.optionalMoney("o_max"),
    resetAt: windowed ? Option.map(read.optionalMillis("o_window_end"), DateTime.unsafeMake) : Option.none()
  }
  return read.problem === undefined ? view : undefined
}

/** Each step's verdict letter and the capped counters it reported. */
const verdictRows = (rows: ReadonlyArray<Record<string, unknown>>, count: number) => {
  const verdicts: Array<string> = new Array<string>(count).fill("f")
  const views: Array<Map<string, Counters.View>> = []
  for (const row of rows) {
    const step = Number(row["o_step"]) - 1
    if (!(step >= 0 && step < count)) continue
    verdicts[step] = String(row["o_verdict"])
    if (row["o_key"] === null) continue
    const view = viewOf(row)
    // Only a refusal can be handed back for a counter that does not read: nothing was written for it.
    if (view === undefined) {
      if (verdicts[step] === "r") verdicts[step] = "f"
      continue
    }
    const map = views[step] ?? new Map<string, Counters.View>()
    map.set(view.key, view)
    views[step] = map
  }
  return { verdicts, views }
}

/**
 * Runs `steps` as one call of `tb_ledger_batch` and answers each in order.
 *
 * @since 0.1.0
 */
export const run = (
  sql: SqlClient,
  holdTtlMillis: number,
  steps: ReadonlyArray<Step>
): Effect.Effect<ReadonlyArray<Verdict>, SqlError> => {
  // One time for the batch: windows only ever move forward, whatever order the steps read the clock in.
  const now = steps.reduce((max, step) => Math.max(max, step.now), 0)
  const kind: Array<string> = []
  const id: Array<string> = []
  const enc: Array<string> = []
  const first: Array<number> = []
  const count: Array<number> = []
  const keys: Array<string> = []
  const strict: Array<boolean> = []
  const amount: Array<Money.Money> = []
  const expires: Array<number> = []
  const log = {
    request: new Array<string | null>(),
    keyId: new Array<string | null>(),
    keyHash: new Array<string | null>(),
    keyLabel: new Array<string | null>(),
    user: new Array<string | null>(),
    team: new Array<string | null>(),
    org: new Array<string | null>(),
    endUser: new Array<string | null>(),
    model: new Array<string | null>(),
    prompt: new Array<number | null>(),
    completion: new Array<number | null>(),
    started: new Array<number | null>(),
    status: new Array<string | null>()
  }
  for (const step of steps) {
    first.push(keys.length + 1)
    count.push(step.keys.length)
    keys.push(...step.keys)
    enc.push(encodeKeys(step.keys))
    if (step._tag === "Hold") {
      kind.push("h")
      id.push(step.request.holdId)
      strict.push(step.request.mode === "strict")
      amount.push(step.request.amount)
      expires.push(step.now + holdTtlMillis)
      for (const column of Object.values(log)) column.push(null)
    } else {
      const draft = step.log
      kind.push("s")
      id.push(step.hold.holdId)
      strict.push(false)
      amount.push(step.cost)
      expires.push(0)
      log.request.push(draft.requestId)
      log.keyId.push(draft.keyId)
      log.keyHash.push(draft.keyHash)
      log.keyLabel.push(draft.keyLabel)
      log.user.push(Option.getOrNull(draft.userId))
      log.team.push(Option.getOrNull(draft.teamId))
      log.org.push(Option.getOrNull(draft.organizationId))
      log.endUser.push(Option.getOrNull(draft.endUser))
      log.model.push(draft.model)
      log.prompt.push(draft.promptTokens)
      log.completion.push(draft.completionTokens)
      log.started.push(draft.startedAt.epochMillis)
      log.status.push(draft.status)
    }
  }
  const call = sql<Record<string, unknown>>`SELECT * FROM tb_ledger_batch(${now}::bigint, ${kind}::text[],
    ${id}::text[], ${enc}::text[], ${first}::int[], ${count}::int[], ${keys}::text[], ${strict}::boolean[],
    ${amount}::bigint[], ${expires}::bigint[], ${log.request}::text[], ${log.keyId}::text[],
    ${log.keyHash}::text[], ${log.keyLabel}::text[], ${log.user}::text[], ${log.team}::text[], ${log.org}::text[],
    ${log.endUser}::text[], ${log.model}::text[], ${log.prompt}::bigint[], ${log.completion}::bigint[],
    ${log.started}::bigint[], ${log.status}::text[])`
  return call.pipe(
    Effect.map((rows) => {
      const { verdicts, views } = verdictRows(rows, steps.length)
      return steps.map((step, i): Verdict => {
        // A step the call decided is answered as decided: its writes are committed.
        const seen = views[i] ?? new Map<string, Counters.View>()
        switch (verdicts[i]) {
          case "h": {
            if (step._tag !== "Hold") return FALLBACK
            const { request } = step
            const held = request.mode === "strict" ? request.amount : Money.zero
            return { _tag: "Held", hold: opened(request, held, step.now + holdTtlMillis, seen) }
          }
          case "r": {
            if (step._tag !== "Hold") return FALLBACK
            const error = Counters.refusal(step.request, seen)
            return error === undefined ? FALLBACK : { _tag: "Refused", error }
          }
          case "s":
            return step._tag !== "Settle"
              ? FALLBACK
              : {
                  _tag: "Settled",
                  settlement: {
                    cost: step.cost,
                    late: false,
                    tightest: Counters.tightest(step.hold.scopes, seen, Money.zero)
                  }
                }
          default:
            return FALLBACK
        }
      })
    }),
    Effect.catchIf(
      (error) => isUniqueViolation(error) || codeOf(error) === CONFLICT_CODE,
      () => Effect.succeed(steps.map(() => FALLBACK))
    )
  )
}
