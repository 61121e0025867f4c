-- associations.dirigeants -> person_record (role dirigeant); a dirigeant a full export no longer
-- lists is kept, deleted_at the run that saw it gone (_deleted_at).
SELECT
    'associations:dirigeant/' || CAST(d.id AS VARCHAR)               AS record_key,
    'associations'                                                   AS source_system,
    'dirigeant/' || CAST(d.id AS VARCHAR)                            AS source_id,
    'dirigeant'                                                      AS role,
    NULLIF(TRIM(d.prenom), '')                                       AS given_names,
    CAST(NULL AS VARCHAR)                                            AS birth_name,
    NULLIF(TRIM(d.nom), '')                                          AS usage_name,
    CASE TRIM(d.civilite) WHEN 'M.' THEN 'M' WHEN 'M' THEN 'M' WHEN 'Mme' THEN 'F' END AS sex,
    CAST(d.date_naissance AS DATE)                                   AS birth_date,
    CASE WHEN d.date_naissance IS NOT NULL THEN 'day' END            AS birth_date_precision,
    CAST(NULL AS VARCHAR)                                            AS birth_place_code,
    CAST(NULL AS VARCHAR)                                            AS birth_country_code,
    NULLIF(TRIM(d.email), '')                                        AS email,
    NULLIF(TRIM(d.telephone), '')                                    AS phone,
    NULLIF(TRIM(d.adresse), '')                                      AS address_line,
    NULLIF(TRIM(d.code_postal), '')                                  AS postcode,
    NULLIF(TRIM(d.commune), '')                                      AS city,
    CAST(NULL AS VARCHAR)                                            AS city_code,
    CAST(NULL AS VARCHAR)                                            AS country,
    CAST(0 AS INTEGER)                                               AS certification_level,
    CAST(d.date_maj AS TIMESTAMPTZ)                                  AS updated_at,
    CAST(d._deleted_at AS TIMESTAMPTZ)                               AS deleted_at
FROM raw_associations.dirigeants AS d
