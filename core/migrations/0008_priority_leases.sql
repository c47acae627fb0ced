-- ferrymq schema, version 8: expired leases of a higher priority first.
--
-- An expired lease is ready again, and a ready delivery of a higher priority goes out
-- before any of a lower one. Version 7 found the prioritized ones among pending
-- deliveries only, and took expired leases by due time, so a claim could hand out an
-- expired lease of priority 0 (or a pending one) while an expired one of priority 9
-- waited. This partial index holds leased deliveries of priority > 0 only: a claim finds
-- the expired ones highest first by walking at most the group's leased prioritized
-- deliveries, and a group that never uses priority writes no entry.
CREATE INDEX ferrymq_deliveries_priority_leased
    ON ferrymq_deliveries (group_id, priority DESC, due_at) WHERE priority > 0 AND state = 1;
