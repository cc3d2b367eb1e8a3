-- rebound 003: what the shared circuit breaker needs beyond 001's columns.
-- Forward-only: later changes come as new files.

-- In-flight half-open probes: {"<token>": "<started_at>", ...}. A probe whose
-- pod died frees its slot once probe_timeout has passed since started_at.
ALTER TABLE circuit_breaker_state
    ADD COLUMN probes     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- When changed_by/change_reason were last written by hand.
    ADD COLUMN changed_at timestamptz;

-- Incremental refresh of the pods' local views reads rows changed lately.
CREATE INDEX circuit_breaker_state_updated_at_idx ON circuit_breaker_state (updated_at);

--
-- Rows changed by hand (the seed's manual reset:
--   UPDATE circuit_breaker_state SET state = 'closed', failure_count = 0 WHERE breaker_key = 'k';)
-- must look like a transition to the pods: a state change that did not bump
-- the generation gets a new generation here, a hand close clears the probes
-- and counters a close clears, and every change stamps updated_at with the
-- database clock.
--
CREATE FUNCTION circuit_breaker_state_before_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state IS DISTINCT FROM OLD.state AND NEW.generation = OLD.generation THEN
        NEW.generation := OLD.generation + 1;
        NEW.probes := '{}'::jsonb;
        NEW.success_count := 0;
        IF NEW.state = 'closed' THEN
            NEW.trip_count := 0;
            NEW.opened_at := NULL;
            NEW.next_probe_at := NULL;
            NEW.window_started_at := NULL;
            NEW.window_calls := 0;
            NEW.window_failures := 0;
        ELSIF NEW.state = 'open' THEN
            NEW.opened_at := coalesce(NEW.opened_at, now());
            NEW.next_probe_at := coalesce(NEW.next_probe_at, now());
        END IF;
        IF NEW.changed_by IS NOT DISTINCT FROM OLD.changed_by THEN
            NEW.changed_by := session_user || ' (sql)';
            NEW.change_reason := 'state set to ' || NEW.state || ' by hand';
            NEW.changed_at := now();
        END IF;
    END IF;
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END
$$;

CREATE TRIGGER circuit_breaker_state_before_update
    BEFORE UPDATE ON circuit_breaker_state
    FOR EACH ROW EXECUTE FUNCTION circuit_breaker_state_before_update();

--
-- Every transition (a new generation), every change of the probes and every
-- insert or delete is announced on channel rebound_breaker with the key as
-- payload ('' for a key too long for a payload: listeners then reload
-- everything). It never raises: a failed notification must not fail the
-- transition, and pods refresh every second anyway.
--
CREATE FUNCTION circuit_breaker_state_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    k text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        k := OLD.breaker_key;
    ELSE
        k := NEW.breaker_key;
    END IF;
    IF TG_OP = 'UPDATE'
       AND NEW.generation = OLD.generation
       AND NEW.state = OLD.state
       AND NEW.probes = OLD.probes
       AND NEW.next_probe_at IS NOT DISTINCT FROM OLD.next_probe_at THEN
        RETURN NULL;
    END IF;
    IF octet_length(k) > 7000 THEN
        k := '';
    END IF;
    BEGIN
        PERFORM pg_notify('rebound_breaker', k);
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'rebound breaker: notify failed: %', SQLERRM;
    END;
    RETURN NULL;
END
$$;

CREATE TRIGGER circuit_breaker_state_notify
    AFTER INSERT OR UPDATE OR DELETE ON circuit_breaker_state
    FOR EACH ROW EXECUTE FUNCTION circuit_breaker_state_notify();
