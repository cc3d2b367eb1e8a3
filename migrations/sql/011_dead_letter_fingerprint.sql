-- rebound 012: failure fingerprints. Each dead-letter row gets
-- failure_fingerprint, its failure reason with the parts that differ from
-- one occurrence to the next (numbers, IDs, quoted values, timestamps,
-- addresses, query strings) replaced by placeholders, so `rebound dlq
-- stats` and /api/admin/dlq/stats count where failures cluster instead of
-- listing one group per request ID. It is computed once, when a row is
-- written (a BEFORE trigger on job_dead_letter_queue, whoever writes the
-- row: the capture trigger on river_job, the reconciliation, or SQL by
-- hand), indexed, and counted per group by triggers (like the size counts
-- of 002). The rules are documented in docs/dead-letter-queue.md ("Where
-- failures cluster").
--
-- Existing rows are filled by writing the table once (see below). The
-- migration runs in one transaction holding job_dead_letter_queue's lock:
-- captures during it wait at most their 2 s lock timeout, log a WARNING and
-- are added by the reconciliation afterwards.

-- rebound_failure_fingerprint returns the fingerprint of a failure reason
-- (NULL for NULL, '' for a reason with no visible character). Applied in
-- this order to the first line that is not blank:
--
--   1. blanks collapsed to one space, the ends trimmed, River's
--      "JobCancelError: " prefix removed, at most 2000 characters read;
--   2. double-quoted values -> "<v>" (JSON keys, {"key": and ,"key":, and
--      quoted URLs are kept), single-quoted values -> '<v>' (an apostrophe
--      inside a word opens none, nor does a quote next to another);
--   3. the query string of a URL (scheme://...?...) -> ?<q>;
--   4. e-mail addresses -> <email>;
--   5. timestamps -> <ts>: RFC 3339 / ISO 8601 dates and date-times (Go's
--      time.Time.String form included), HTTP dates (IMF-fixdate, GMT),
--      times of day (08:00:01);
--   6. UUIDs -> <uuid>;
--   7. IP addresses -> <ip>: IPv6 in brackets ([<ip>]) or bare (with "::" or
--      eight groups), IPv4; a port stays a number (step 10);
--   8. base64 blobs (16+ characters with = padding) -> <id>;
--      0x-numbers and hex IDs (8+ hex digits with a digit and a letter)
--      -> <hex>; other opaque IDs -> <id>: a run of 8+ letters and digits
--      with two separate groups of digits, or with a digit and a lower-case
--      letter followed by a capital (req_8mHlJ2w3ZvN7Xq -> req_<id>);
--   9. Go durations (1.5s, 250ms, 1m30s) -> <dur>;
--  10. numbers (12345, 1.5, 1.2.3) -> <n>, except digits glued to a letter
--      on their left (sha256, x509, v1 stay) and the code after "HTTP ",
--      "SQLSTATE ", "StatusCode: ", "status ", "status: ", "status=" and
--      "status code " (HTTP 503 and SQLSTATE 23505 stay: they name the
--      failure);
--  11. at most 200 characters, cut between words: a run of letters and
--      digits or a placeholder the cut would split is left out (a first
--      word longer than 200 characters gives <id>), and steps 2-10 run
--      again on what is left.
--
-- Letters and digits are ASCII: the result is the same under any locale.
-- It is idempotent (the fingerprint of a fingerprint is itself: the rules
-- whose matches may start or end with a symbol, quotes, e-mail, IPv6 and
-- base64, take a placeholder's < or > next to them as part of a word) and
-- never longer than 200 characters (800 bytes), so it fits a btree index
-- row.
CREATE FUNCTION rebound_failure_fingerprint(p_reason text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    s      text COLLATE "C";
    v_pass integer := 0;
    -- Private-use characters, removed from the input first: mark stands in
    -- for the quotes of kept JSON keys and URLs, keep guards a status code.
    mark constant text := chr(57344); -- U+E000
    keep constant text := chr(57345); -- U+E001
BEGIN
    IF p_reason IS NULL THEN
        RETURN NULL;
    END IF;
    -- Cheap tests (strpos, translate) skip the rules a reason cannot need:
    -- each regexp_replace costs microseconds even when nothing matches.
    s := btrim(translate(p_reason, E'\r', E'\n'), E' \t\n\x0B\f');
    s := btrim(left(translate(split_part(s, E'\n', 1), mark || keep, ''), 2000), E' \t\x0B\f');
    IF strpos(s, '  ') > 0 OR translate(s, E'\t\x0B\f', '') <> s THEN
        s := regexp_replace(s, '[ \t\v\f]+', ' ', 'g');
    END IF;
    WHILE left(s, 15) = 'JobCancelError:' LOOP
        s := ltrim(substr(s, 16), ' ');
    END LOOP;

    LOOP
        v_pass := v_pass + 1;
        -- 2. Quoted values.
        IF strpos(s, '"') > 0 THEN
            IF strpos(s, '{') > 0 OR strpos(s, ',') > 0 THEN
                s := regexp_replace(s, '([{,] ?)"((?:[^"\\]|\\.)*)"(?= ?(?::|$))', '\1' || mark || '\2' || mark, 'g');
            END IF;
            IF strpos(s, '://') > 0 THEN
                s := regexp_replace(s, '"([A-Za-z][A-Za-z+.-]*://(?:[^"\\]|\\.)*)"', mark || '\1' || mark, 'g');
            END IF;
            s := regexp_replace(s, '"(?:[^"\\]|\\.)*"', '"<v>"', 'g');
        END IF;
        -- A single-quoted value holds no double quote (nor a mark), so the
        -- two kinds never overlap, and touches no other single quote.
        IF strpos(s, '''') > 0 THEN
            s := regexp_replace(s, '(^|[^A-Za-z0-9>''])''[^''"' || mark || ']*''(?![A-Za-z0-9<''])', '\1''<v>''', 'g');
        END IF;
        s := replace(s, mark, '"');
        -- 3. Query strings.
        IF strpos(s, '://') > 0 AND strpos(s, '?') > 0 THEN
            s := regexp_replace(s, '([A-Za-z][A-Za-z+.-]*://[^ ?#"''<>]*)\?(?!<)(?:[^ #"''<>]*[^ #"''<>:,;.)\]])?', '\1?<q>', 'g');
        END IF;
        -- 4. E-mail addresses.
        IF strpos(s, '@') > 0 THEN
            s := regexp_replace(s, '(^|[^A-Za-z0-9._%+>-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])', '\1<email>', 'g');
        END IF;

        IF translate(s, '0123456789', '') <> s THEN
            -- 5. Timestamps.
            IF strpos(s, ':') > 0 OR strpos(s, '-') > 0 THEN
                s := regexp_replace(s, '(^|[^0-9A-Za-z:.])(?:'
                    || '[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?(?:Z|[ ]?[+-][0-9]{2}(?::?[0-9]{2})?(?: [A-Z]{3,5}(?![A-Za-z]))?)?)?(?![0-9A-Za-z])'
                    || '|[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]+)?(?![0-9A-Za-z:])'
                    || '|[A-Z][a-z]{2}, [0-9]{1,2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT)', '\1<ts>', 'g');
            END IF;
            -- 6. UUIDs.
            IF strpos(s, '-') > 0 THEN
                s := regexp_replace(s, '(^|[^0-9A-Za-z])[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?![0-9A-Za-z])', '\1<uuid>', 'g');
            END IF;
            -- 7. IP addresses.
            -- (Not after a double quote: a JSON key's colon is not an address.)
            IF strpos(s, '::') > 0 OR char_length(s) - char_length(replace(s, ':', '')) >= 7 THEN
                s := regexp_replace(s, '\[[0-9A-Fa-f]*:[0-9A-Fa-f:.]*(?:%[A-Za-z0-9._-]+)?\]', '[<ip>]', 'g');
                s := regexp_replace(s, '(^|[^0-9A-Za-z>:."])(?=[0-9A-Fa-f:]*[0-9A-Fa-f])(?=[0-9A-Fa-f:]*::|(?:[0-9A-Fa-f]{1,4}:){7})[0-9A-Fa-f:]{2,39}(?![0-9A-Za-z<:])', '\1<ip>', 'g');
            END IF;
            IF strpos(s, '.') > 0 THEN
                s := regexp_replace(s, '(^|[^0-9A-Za-z.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9A-Za-z]|\.[0-9])', '\1<ip>', 'g');
            END IF;
            -- 8. Base64 blobs, hex, opaque IDs; 9. durations.
            IF strpos(s, '=') > 0 THEN
                s := regexp_replace(s, '(^|[^A-Za-z0-9+/=>])[A-Za-z0-9+/]{16,}={1,2}(?![A-Za-z0-9+/=<])', '\1<id>', 'g');
            END IF;
            IF s ~ '[A-Za-z][0-9]|[0-9][A-Za-z]' THEN
                s := regexp_replace(s, '(^|[^0-9A-Za-z])(?:0[xX][0-9A-Fa-f]+|(?=[0-9A-Fa-f]{8})(?:[0-9]+[A-Fa-f]|[A-Fa-f]+[0-9])[0-9A-Fa-f]*)(?![0-9A-Za-z])', '\1<hex>', 'g');
                s := regexp_replace(s, '(^|[^0-9A-Za-z])(?=[0-9A-Za-z]{8})(?:(?=[A-Za-z]*[0-9]+[A-Za-z]+[0-9])|(?=[A-Za-z]*[0-9])(?=[0-9A-Za-z]*[a-z][A-Z]))[0-9A-Za-z]+(?![0-9A-Za-z])', '\1<id>', 'g');
                s := regexp_replace(s, '(^|[^0-9A-Za-z.])(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|ms|s|m|h))+(?![0-9A-Za-z])', '\1<dur>', 'g');
            END IF;
            -- 10. Numbers; a status code or SQLSTATE is guarded by keep.
            s := replace(s, 'HTTP ', 'HTTP ' || keep);
            s := replace(s, 'SQLSTATE ', 'SQLSTATE ' || keep);
            s := replace(s, 'StatusCode: ', 'StatusCode: ' || keep);
            s := replace(s, 'status ', 'status ' || keep);
            s := replace(s, 'status ' || keep || 'code ', 'status code ' || keep);
            s := replace(s, 'status: ', 'status: ' || keep);
            s := replace(s, 'status=', 'status=' || keep);
            s := replace(regexp_replace(s, '(^|[^0-9A-Za-z' || keep || '])[0-9]+(?:\.[0-9]+)*(?=[A-Za-z]*(?![0-9A-Za-z]))', '\1<n>', 'g'), keep, '');
        END IF;

        -- 11. At most 200 characters, cut between words: a word or
        --     placeholder the cut would split is left out, nothing left is
        --     <id>. The rules run again on what is left (the cut may change
        --     what follows the last value kept), so the result is its own
        --     fingerprint.
        EXIT WHEN char_length(s) <= 200;
        IF substr(s, 201, 1) ~ '[0-9A-Za-z]' THEN
            s := regexp_replace(left(s, 200), '[0-9A-Za-z]+$', '');
        ELSE
            s := left(s, 200);
        END IF;
        s := rtrim(regexp_replace(s, '<[a-z]*$', ''));
        IF s = '' THEN
            s := '<id>';
        END IF;
        EXIT WHEN v_pass = 4; -- a bound; passes after the first read 200 characters
    END LOOP;
    RETURN s;
END $$;

-- rebound_failure_fingerprint_id returns the short name of a fingerprint
-- that `rebound dlq stats` shows and --fingerprint / fingerprint= accept:
-- the first 12 hex digits of the SHA-256 of its UTF-8 bytes.
CREATE FUNCTION rebound_failure_fingerprint_id(p_fingerprint text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT left(encode(sha256(convert_to(p_fingerprint, 'UTF8')), 'hex'), 12)
$$;

-- rebound_failure_fingerprint_safe is rebound_failure_fingerprint for
-- writing rows: it never raises. Should the fingerprint fail, it returns the
-- reason's first line (at most 200 characters) and logs a WARNING naming the
-- River job. (Immutable for the generated column below: its result depends
-- on its arguments only. Not parallel safe: it starts a subtransaction.)
CREATE FUNCTION rebound_failure_fingerprint_safe(p_reason text, p_river_job_id bigint) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN rebound_failure_fingerprint(p_reason);
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'rebound: failure fingerprint failed for the dead-letter row of river_job %: % (SQLSTATE %); the first line of the reason stands in',
        p_river_job_id, SQLERRM, SQLSTATE;
    RETURN left(btrim(split_part(btrim(p_reason, E' \t\r\n'), E'\n', 1)), 200);
END $$;

-- Existing rows: the column is added as a generated column, so the table is
-- written once (no dead row versions, indexes rebuilt in bulk) instead of
-- updated row by row, and then made a plain column, filled from now on by
-- the trigger below. Nothing else writes the table meanwhile: ALTER TABLE
-- holds its lock until the migration commits. Should the fingerprint fail on
-- some row, the table is written again with the safe variant (a
-- subtransaction per row: about twice as slow).
DO $$
BEGIN
    BEGIN
        ALTER TABLE job_dead_letter_queue ADD COLUMN failure_fingerprint text COLLATE "C" NOT NULL
            GENERATED ALWAYS AS (rebound_failure_fingerprint(failure_reason)) STORED;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'rebound 012: % (SQLSTATE %); fingerprinting row by row', SQLERRM, SQLSTATE;
        ALTER TABLE job_dead_letter_queue ADD COLUMN failure_fingerprint text COLLATE "C" NOT NULL
            GENERATED ALWAYS AS (rebound_failure_fingerprint_safe(failure_reason, river_job_id)) STORED;
    END;
END
$$;
ALTER TABLE job_dead_letter_queue ALTER COLUMN failure_fingerprint DROP EXPRESSION;

-- The trigger function filling failure_fingerprint on every insert, and on
-- every update that sets the reason or the fingerprint (a fingerprint set by
-- hand is computed again). It never raises: the row is written by the
-- capture trigger on river_job, where an error would cost the row (the
-- capture turns it into a WARNING) and, coming back on every try, would keep
-- the reconciliation from adding it too.
CREATE FUNCTION rebound_dead_letter_fingerprint() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    NEW.failure_fingerprint := rebound_failure_fingerprint_safe(NEW.failure_reason, NEW.river_job_id);
    RETURN NEW;
END $$;

CREATE TRIGGER rebound_dead_letter_fingerprint
    BEFORE INSERT OR UPDATE OF failure_reason, failure_fingerprint ON job_dead_letter_queue
    FOR EACH ROW EXECUTE FUNCTION rebound_dead_letter_fingerprint();

-- Stats read each group's first and latest entry at the ends of its range
-- of this index; filters by time or operation key count the groups from it.
CREATE INDEX job_dead_letter_queue_fingerprint_idx
    ON job_dead_letter_queue (status, failure_fingerprint, kind, failure_class, dead_lettered_at, id);

--
-- job_dead_letter_queue_group_counts: signed deltas of rows per (status,
-- fingerprint, kind, class), appended by statement triggers on
-- job_dead_letter_queue exactly as job_dead_letter_queue_counts (002) is per
-- (kind, status), and folded by the reconciliation every pass (groups that
-- sum to 0 dropped). sum(n) GROUP BY status, fingerprint, kind, class is the
-- exact size of every group in any snapshot, so stats cost the same at any
-- size of the queue: they read one row per group (and per statement since
-- the last fold), not one per entry. A separate table, so that a pod still
-- running the previous release (whose reconciliation folds only
-- job_dead_letter_queue_counts) leaves it right.
--
CREATE TABLE job_dead_letter_queue_group_counts (
    status              text   NOT NULL,
    failure_fingerprint text   COLLATE "C" NOT NULL,
    kind                text   NOT NULL,
    failure_class       text   NOT NULL,
    n                   bigint NOT NULL
);

INSERT INTO job_dead_letter_queue_group_counts (status, failure_fingerprint, kind, failure_class, n)
SELECT status, failure_fingerprint, kind, failure_class, count(*)
  FROM job_dead_letter_queue
 GROUP BY status, failure_fingerprint, kind, failure_class;

CREATE FUNCTION rebound_dead_letter_group_count_insert() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO job_dead_letter_queue_group_counts (status, failure_fingerprint, kind, failure_class, n)
    SELECT status, failure_fingerprint, kind, failure_class, count(*)
      FROM rebound_new_rows GROUP BY status, failure_fingerprint, kind, failure_class;
    RETURN NULL;
END $$;

CREATE FUNCTION rebound_dead_letter_group_count_update() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO job_dead_letter_queue_group_counts (status, failure_fingerprint, kind, failure_class, n)
    SELECT status, failure_fingerprint, kind, failure_class, sum(n)
      FROM (SELECT status, failure_fingerprint, kind, failure_class, 1 AS n FROM rebound_new_rows
            UNION ALL
            SELECT status, failure_fingerprint, kind, failure_class, -1 AS n FROM rebound_old_rows) d
     GROUP BY status, failure_fingerprint, kind, failure_class
    HAVING sum(n) <> 0;
    RETURN NULL;
END $$;

CREATE FUNCTION rebound_dead_letter_group_count_delete() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO job_dead_letter_queue_group_counts (status, failure_fingerprint, kind, failure_class, n)
    SELECT status, failure_fingerprint, kind, failure_class, -count(*)
      FROM rebound_old_rows GROUP BY status, failure_fingerprint, kind, failure_class;
    RETURN NULL;
END $$;

CREATE TRIGGER rebound_dead_letter_group_count_insert AFTER INSERT ON job_dead_letter_queue
    REFERENCING NEW TABLE AS rebound_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rebound_dead_letter_group_count_insert();
CREATE TRIGGER rebound_dead_letter_group_count_update AFTER UPDATE ON job_dead_letter_queue
    REFERENCING NEW TABLE AS rebound_new_rows OLD TABLE AS rebound_old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rebound_dead_letter_group_count_update();
CREATE TRIGGER rebound_dead_letter_group_count_delete AFTER DELETE ON job_dead_letter_queue
    REFERENCING OLD TABLE AS rebound_old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rebound_dead_letter_group_count_delete();
