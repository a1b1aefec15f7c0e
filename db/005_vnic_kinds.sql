-- A vNIC's kind says how it attaches in the project's one vocabulary, the same three words as the
-- contract's VNicKind and the agent's NicKind: 'bridge' (a tap on the bridge of a logical network,
-- was 'network'), 'virtual_network' (a libvirt virtual network, was 'virtual') and 'direct'.
--
-- The check function is replaced first (the CHECK constraints call it by reference, so they follow),
-- then every stored row is renamed; each UPDATE is checked against the new words.

CREATE OR REPLACE FUNCTION vnic_attachment_ok(kind text, has_network boolean, virtual_network text,
                                              direct_nic text, direct_mode text, virtualport jsonb)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE kind
        WHEN 'bridge'          THEN has_network AND virtual_network IS NULL AND direct_nic IS NULL
                                    AND direct_mode IS NULL AND virtualport IS NULL
        WHEN 'virtual_network' THEN NOT has_network AND virtual_network IS NOT NULL AND direct_nic IS NULL
                                    AND direct_mode IS NULL AND virtualport IS NULL
        WHEN 'direct'          THEN virtual_network IS NULL AND direct_nic IS NOT NULL
                                    AND direct_mode IN ('vepa', 'bridge', 'private', 'passthrough')
        ELSE false
    END
$$;

UPDATE vnics SET kind = CASE kind WHEN 'network' THEN 'bridge' ELSE 'virtual_network' END
 WHERE kind IN ('network', 'virtual');
UPDATE template_nics SET kind = CASE kind WHEN 'network' THEN 'bridge' ELSE 'virtual_network' END
 WHERE kind IN ('network', 'virtual');
UPDATE snapshot_nics SET kind = CASE kind WHEN 'network' THEN 'bridge' ELSE 'virtual_network' END
 WHERE kind IN ('network', 'virtual');
