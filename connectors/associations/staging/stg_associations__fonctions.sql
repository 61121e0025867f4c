-- associations.dirigeants (their fonction in an association) -> organisation_role.
SELECT
    'associations:association/' || TRIM(d.rna)                       AS organisation_key,
    'associations:dirigeant/' || CAST(d.id AS VARCHAR)               AS record_key,
    LOWER(TRIM(d.fonction))                                          AS role,
    CAST(NULL AS DATE)                                               AS valid_from,
    CAST(NULL AS DATE)                                               AS valid_to
FROM raw_associations.dirigeants AS d
WHERE d._deleted_at IS NULL AND NULLIF(TRIM(d.rna), '') IS NOT NULL AND NULLIF(TRIM(d.fonction), '') IS NOT NULL
