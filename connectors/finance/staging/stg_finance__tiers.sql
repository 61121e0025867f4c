-- finance.tiers -> person_record (role debiteur). Maps and trims only; identity standardisation is matching's.
SELECT
    'finance:tiers/' || CAST(t.id AS VARCHAR)                        AS record_key,
    'finance'                                                        AS source_system,
    'tiers/' || CAST(t.id AS VARCHAR)                                AS source_id,
    'debiteur'                                                       AS role,
    NULLIF(TRIM(t.prenom), '')                                       AS given_names,
    NULLIF(TRIM(t.nom_naissance), '')                                AS birth_name,
    NULLIF(TRIM(t.nom), '')                                          AS usage_name,
    CASE TRIM(t.civilite) WHEN 'M.' THEN 'M' WHEN 'M' THEN 'M' WHEN 'Mme' THEN 'F' END AS sex,
    CAST(t.date_naissance AS DATE)                                   AS birth_date,
    CASE WHEN t.date_naissance IS NOT NULL THEN 'day' END            AS birth_date_precision,
    CAST(NULL AS VARCHAR)                                            AS birth_place_code,
    CAST(NULL AS VARCHAR)                                            AS birth_country_code,
    NULLIF(TRIM(t.email), '')                                        AS email,
    NULLIF(TRIM(t.telephone), '')                                    AS phone,
    NULLIF(TRIM(t.adresse), '')                                      AS address_line,
    NULLIF(TRIM(t.code_postal), '')                                  AS postcode,
    NULLIF(TRIM(t.ville), '')                                        AS city,
    CAST(NULL AS VARCHAR)                                            AS city_code,
    CAST(NULL AS VARCHAR)                                            AS country,
    CAST(0 AS INTEGER)                                               AS certification_level,
    CAST(t.updated_at AS TIMESTAMPTZ)                                AS updated_at,
    -- the silo keeps no deletion time: the last change is when it was flagged
    CASE WHEN CAST(t.supprime AS INTEGER) = 1 THEN CAST(t.updated_at AS TIMESTAMPTZ) END AS deleted_at
FROM raw_finance.tiers AS t
