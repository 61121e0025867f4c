-- family.enfants -> person_record (role enfant). No address: a household's shared address is
-- weak evidence for children and invites household chaining in matching.
SELECT
    'family:enfant/' || CAST(e.id AS VARCHAR)                        AS record_key,
    'family'                                                         AS source_system,
    'enfant/' || CAST(e.id AS VARCHAR)                               AS source_id,
    'enfant'                                                         AS role,
    NULLIF(TRIM(e.prenoms), '')                                      AS given_names,
    CAST(NULL AS VARCHAR)                                            AS birth_name,
    NULLIF(TRIM(e.nom), '')                                          AS usage_name,
    CASE UPPER(TRIM(e.sexe)) WHEN 'F' THEN 'F' WHEN 'M' THEN 'M' END AS sex,
    CAST(e.date_naissance AS DATE)                                   AS birth_date,
    CASE WHEN e.date_naissance IS NOT NULL THEN 'day' END            AS birth_date_precision,
    CAST(NULL AS VARCHAR)                                            AS birth_place_code,
    CAST(NULL AS VARCHAR)                                            AS birth_country_code,
    CAST(NULL AS VARCHAR)                                            AS email,
    CAST(NULL AS VARCHAR)                                            AS phone,
    CAST(NULL AS VARCHAR)                                            AS address_line,
    CAST(NULL AS VARCHAR)                                            AS postcode,
    CAST(NULL AS VARCHAR)                                            AS city,
    CAST(NULL AS VARCHAR)                                            AS city_code,
    CAST(NULL AS VARCHAR)                                            AS country,
    CAST(0 AS INTEGER)                                               AS certification_level,
    CAST(e.updated_at AS TIMESTAMPTZ)                                AS updated_at,
    CASE WHEN e.deleted THEN CAST(e.updated_at AS TIMESTAMPTZ) END   AS deleted_at
FROM raw_family.enfants AS e
