-- family: responsables and enfants grouped by famille -> household_membership (live records only).
SELECT
    'family'                                                         AS source_system,
    'family:famille/' || CAST(r.famille_id AS VARCHAR)               AS household_id,
    'family:responsable/' || CAST(r.id AS VARCHAR)                   AS record_key,
    'responsable'                                                    AS role,
    CAST(NULL AS DATE)                                               AS valid_from,
    CAST(NULL AS DATE)                                               AS valid_to
FROM raw_family.responsables AS r
WHERE r.famille_id IS NOT NULL AND NOT COALESCE(r.deleted, FALSE)
UNION ALL
SELECT
    'family',
    'family:famille/' || CAST(e.famille_id AS VARCHAR),
    'family:enfant/' || CAST(e.id AS VARCHAR),
    'enfant',
    CAST(NULL AS DATE),
    CAST(NULL AS DATE)
FROM raw_family.enfants AS e
WHERE e.famille_id IS NOT NULL AND NOT COALESCE(e.deleted, FALSE)
