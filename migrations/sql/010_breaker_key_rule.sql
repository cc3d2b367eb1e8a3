-- Numbering: 006 to 009 do not exist and never will. This file was written
-- on the circuit breaker's branch while the dead-letter queue's branch was
-- still adding migrations (005 among them), and took a number clear of
-- theirs; databases record it as version 10, so it keeps that number (see
-- the migrations package doc, "Version numbers").
--
-- rebound 010: an operation key (circuit_breaker_state.breaker_key) follows
-- breaker.ValidateKey's rule: 1 to 255 characters, not blank, no control
-- characters (Unicode Cc: U+0001-U+001F, U+007F-U+009F; PostgreSQL text holds
-- no NUL and only valid UTF-8). The Go rule is the stricter one (it also
-- refuses keys made only of non-ASCII white space); this constraint keeps SQL
-- written by hand within the same bounds.
--
-- Rows whose keys break the rule are removed first: no pod, command or API
-- can name such a key any more, so their state could only be read, never
-- changed. A removed row means "closed", the state of a key without a row.
DO $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM circuit_breaker_state
     WHERE NOT (char_length(breaker_key) <= 255
                AND btrim(breaker_key) <> ''
                AND breaker_key !~ '[\u0001-\u001f\u007f-\u009f]');
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        RAISE NOTICE 'rebound 010: removed % circuit_breaker_state row(s) whose key is empty, blank, longer than 255 characters or holds a control character', n;
    END IF;
END
$$;

ALTER TABLE circuit_breaker_state
    ADD CONSTRAINT circuit_breaker_state_breaker_key_check
    CHECK (char_length(breaker_key) <= 255
           AND btrim(breaker_key) <> ''
           AND breaker_key !~ '[\u0001-\u001f\u007f-\u009f]');
