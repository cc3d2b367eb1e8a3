CREATE TRIGGER rebound_dead_letter_capture
    AFTER UPDATE OF state ON river_job
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state
          AND (NEW.state::text IN ('discarded', 'cancelled') OR OLD.state::text IN ('discarded', 'cancelled')))
    EXECUTE FUNCTION rebound_dead_letter_trigger();
