-- A vNIC removed from a running VM whose guest has not released the device yet (the live domain XML
-- still has it after libvirt's detach returned) stays recorded, with its MAC leased, as `unplugging`:
-- its MAC cannot go to another vNIC while the guest may still send with it. A later `vm nic remove`
-- that finds it gone from the live XML, or the VM's stop, completes the removal (manager/service/vnics.py).

ALTER TABLE vnics ADD COLUMN unplugging boolean NOT NULL DEFAULT false;
