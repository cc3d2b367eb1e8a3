-- rebound 015: circuit_breaker_state.open_since, when the breaker last left
-- closed: the first open of the outage it is in. opened_at is the last
-- open (every failed probe sets it again), so "open for 0s" was all a row
-- could say after minutes of failed probes. NULL while closed.
ALTER TABLE circuit_breaker_state ADD COLUMN open_since timestamptz;

-- Rows out of closed now: their first open is not known; the last one is
-- the best there is. Stamped without the update trigger, so updated_at
-- (and the pods' view, and the idle cleanup) stays as it was.
ALTER TABLE circuit_breaker_state DISABLE TRIGGER circuit_breaker_state_before_update;
UPDATE circuit_breaker_state SET open_since = coalesce(opened_at, updated_at) WHERE state <> 'closed';
ALTER TABLE circuit_breaker_state ENABLE TRIGGER circuit_breaker_state_before_update;

-- Every write keeps it, whoever makes it (the breaker's statements, rebound
-- breaker reset|open, SQL by hand): a close clears it; a row that leaves
-- closed (or is inserted out of closed) takes its opened_at, else now(); a
-- row that stays out of closed (open -> half_open -> open) keeps it. It
-- runs after circuit_breaker_state_before_update (triggers of one event
-- fire by name), which sets opened_at for an open made by hand.
CREATE FUNCTION circuit_breaker_state_open_since() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'closed' THEN
        NEW.open_since := NULL;
    ELSIF NEW.open_since IS NULL THEN
        NEW.open_since := coalesce(NEW.opened_at, now());
    ELSIF TG_OP = 'UPDATE' THEN
        IF OLD.state = 'closed' THEN
            NEW.open_since := coalesce(NEW.opened_at, now());
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER circuit_breaker_state_open_since
    BEFORE INSERT OR UPDATE ON circuit_breaker_state
    FOR EACH ROW EXECUTE FUNCTION circuit_breaker_state_open_since();
