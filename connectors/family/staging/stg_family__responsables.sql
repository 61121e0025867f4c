-- family.responsables -> person_record (role parent); the address is their famille's.
SELECT
    'family:responsable/' || CAST(r.id AS VARCHAR)                   AS record_key,
    'family'                                                         AS source_system,
    'responsable/' || CAST(r.id AS VARCHAR)                          AS source_id,
    'parent'                                                         AS role,
    NULLIF(TRIM(r.prenoms), '')                                      AS given_names,
    NULLIF(TRIM(r.nom_naissance), '')                                AS birth_name,
    NULLIF(TRIM(r.nom), '')                                          AS usage_name,
    CASE UPPER(TRIM(r.sexe)) WHEN 'F' THEN 'F' WHEN 'M' THEN 'M' END AS sex,
    CAST(r.date_naissance AS DATE)                                   AS birth_date,
    CASE WHEN r.date_naissance IS NOT NULL THEN 'day' END            AS birth_date_precision,
    CAST(NULL AS VARCHAR)                                            AS birth_place_code,
    CAST(NULL AS VARCHAR)                                            AS birth_country_code,
    NULLIF(TRIM(r.email), '')                                        AS email,
    NULLIF(TRIM(r.telephone), '')                                    AS phone,
    NULLIF(TRIM(f.adresse__ligne), '')                               AS address_line,
    NULLIF(TRIM(f.adresse__code_postal), '')                         AS postcode,
    NULLIF(TRIM(f.adresse__commune), '')                             AS city,
    NULLIF(TRIM(f.adresse__code_insee), '')                          AS city_code,
    CAST(NULL AS VARCHAR)                                            AS country,
    CAST(CASE LOWER(TRIM(r.certification))
        WHEN 'franceconnect' THEN 2
        WHEN 'justificatif' THEN 1
        ELSE 0 END AS INTEGER)                                       AS certification_level,
    CAST(r.updated_at AS TIMESTAMPTZ)                                AS updated_at,
    -- the portal keeps no deletion time: the last change is when it was flagged
    CASE WHEN r.deleted THEN CAST(r.updated_at AS TIMESTAMPTZ) END   AS deleted_at
FROM raw_family.responsables AS r
LEFT JOIN raw_family.familles AS f ON f.id = r.famille_id
