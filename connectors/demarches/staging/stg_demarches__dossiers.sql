-- demarches.dossiers -> person_record (role demandeur): the person who filed the dossier, one record
-- per dossier. For a démarche filed for an organisation (PersonneMorale) only the account's e-mail
-- is personal. A dossier listed in deleted_dossiers after its last change is deleted (a dossier
-- restored later comes back with a newer dateDerniereModification and is alive again).
SELECT
    'demarches:dossier/' || CAST(d.number AS VARCHAR)                AS record_key,
    'demarches'                                                      AS source_system,
    'dossier/' || CAST(d.number AS VARCHAR)                          AS source_id,
    'demandeur'                                                      AS role,
    NULLIF(TRIM(d.demandeur__prenom), '')                            AS given_names,
    CAST(NULL AS VARCHAR)                                            AS birth_name,
    NULLIF(TRIM(d.demandeur__nom), '')                               AS usage_name,
    CASE TRIM(d.demandeur__civilite) WHEN 'Mme' THEN 'F' WHEN 'M' THEN 'M' END AS sex,
    CAST(d.demandeur__date_de_naissance AS DATE)                     AS birth_date,
    CASE WHEN d.demandeur__date_de_naissance IS NOT NULL THEN 'day' END AS birth_date_precision,
    CAST(NULL AS VARCHAR)                                            AS birth_place_code,
    CAST(NULL AS VARCHAR)                                            AS birth_country_code,
    NULLIF(TRIM(d.usager__email), '')                                AS email,
    CAST(NULL AS VARCHAR)                                            AS phone,
    CAST(NULL AS VARCHAR)                                            AS address_line,
    CAST(NULL AS VARCHAR)                                            AS postcode,
    CAST(NULL AS VARCHAR)                                            AS city,
    CAST(NULL AS VARCHAR)                                            AS city_code,
    CAST(NULL AS VARCHAR)                                            AS country,
    -- identity as typed by the usager (the API says nothing of how it was checked)
    CAST(0 AS INTEGER)                                               AS certification_level,
    CAST(d.date_derniere_modification AS TIMESTAMPTZ)                AS updated_at,
    CASE WHEN s.date_supression >= d.date_derniere_modification
         THEN CAST(s.date_supression AS TIMESTAMPTZ) END             AS deleted_at
FROM raw_demarches.dossiers AS d
LEFT JOIN raw_demarches.deleted_dossiers AS s ON s.number = d.number
