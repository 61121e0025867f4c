-- finance.tiers.groupe_id (debtors of one foyer) -> household_membership, live tiers only.
SELECT
    'finance'                                                        AS source_system,
    'finance:groupe/' || CAST(t.groupe_id AS VARCHAR)                AS household_id,
    'finance:tiers/' || CAST(t.id AS VARCHAR)                        AS record_key,
    'responsable'                                                    AS role,
    CAST(NULL AS DATE)                                               AS valid_from,
    CAST(NULL AS DATE)                                               AS valid_to
FROM raw_finance.tiers AS t
WHERE t.groupe_id IS NOT NULL
  AND COALESCE(CAST(t.supprime AS INTEGER), 0) = 0
