-- associations.associations -> organisation (key: the RNA number).
SELECT
    'associations:association/' || TRIM(a.rna)                       AS organisation_key,
    'associations'                                                   AS source_system,
    'association/' || TRIM(a.rna)                                    AS source_id,
    COALESCE(NULLIF(TRIM(a.nom), ''), TRIM(a.rna))                   AS name,
    UPPER(TRIM(a.rna))                                               AS rna,
    CASE WHEN NULLIF(TRIM(a.siret), '') IS NOT NULL THEN SUBSTRING(TRIM(a.siret), 1, 9) END AS siren,
    NULLIF(TRIM(a.siret), '')                                        AS siret,
    NULLIF(TRIM(a.adresse), '')                                      AS address_line,
    NULLIF(TRIM(a.code_postal), '')                                  AS postcode,
    NULLIF(TRIM(a.commune), '')                                      AS city
FROM raw_associations.associations AS a
WHERE a._deleted_at IS NULL  -- rows a full export no longer lists are gone from the silo
