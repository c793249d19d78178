-- The seeds' look-ups (issue 26): compliance rollups in change order, an owner's and a
-- trigger's entitlements, owners by the integrator's external id.
CREATE INDEX projections_changed ON projections (organization_id, kind, updated_at, key);
CREATE INDEX projections_entitlement_owner ON projections (organization_id, (state->>'ownerId'))
    WHERE kind = 'entitlement';
CREATE INDEX projections_entitlement_trigger ON projections (organization_id, (state->>'triggerId'))
    WHERE kind = 'entitlement';
CREATE INDEX projections_owner_external_id ON projections (organization_id, (state->>'external_id'))
    WHERE kind = 'owner';
