CREATE TRIGGER rebound_batch_count_replay
    AFTER INSERT ON river_job
    FOR EACH ROW
    WHEN (NEW.metadata ? 'batch_id' AND NEW.metadata ? 'dead_letter_retry_of')
    EXECUTE FUNCTION rebound_batch_trigger();
