-- One runtime change (start, stop, hot-plug) at a time per VM, without a lock held across the agent
-- call: the change claims the VM in a short transaction, calls the agent, then records the result
-- where the claim is still its own (manager/store/vms.py). A claim older than the manager's claim
-- lifetime belongs to a manager that died and no longer counts.

ALTER TABLE vms
    ADD COLUMN claim uuid,
    ADD COLUMN claimed_at timestamptz,
    ADD CONSTRAINT vms_claim_dated CHECK ((claim IS NULL) = (claimed_at IS NULL));
