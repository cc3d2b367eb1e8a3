CREATE TRIGGER rebound_batch_count
    AFTER UPDATE OF state ON river_job
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state
          AND (NEW.state::text IN ('completed', 'discarded', 'cancelled') OR OLD.state::text IN ('completed', 'discarded', 'cancelled'))
          AND (NEW.metadata ? 'batch_id' OR OLD.metadata ? 'batch_id'))
    EXECUTE FUNCTION rebound_batch_trigger();
