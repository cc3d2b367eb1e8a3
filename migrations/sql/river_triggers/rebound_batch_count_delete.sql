CREATE TRIGGER rebound_batch_count_delete
    AFTER DELETE ON river_job
    FOR EACH ROW
    WHEN (OLD.metadata ? 'batch_id' AND OLD.state::text NOT IN ('completed', 'discarded', 'cancelled'))
    EXECUTE FUNCTION rebound_batch_trigger();
