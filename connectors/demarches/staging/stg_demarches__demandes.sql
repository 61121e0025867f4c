-- demarches.dossiers -> interaction (kind demande), owned by the dossier's demandeur record.
-- status is the dossier's state; the form's answers (champs, as the API gave them) go to details.
-- A deleted dossier is no longer a demande of the silo: it is left out (its person_record keeps
-- the deletion in deleted_at).
SELECT
    'demarches:dossier/' || CAST(d.number AS VARCHAR)                AS interaction_key,
    'demarches'                                                      AS source_system,
    'dossier/' || CAST(d.number AS VARCHAR)                          AS source_id,
    'demarches:dossier/' || CAST(d.number AS VARCHAR)                AS record_key,
    'demande'                                                        AS kind,
    COALESCE(NULLIF(TRIM(m.title), ''), 'démarche ' || CAST(d.demarche_number AS VARCHAR)) AS service,
    'Dossier n° ' || CAST(d.number AS VARCHAR)                       AS title,
    NULLIF(LOWER(TRIM(d.state)), '')                                 AS status,
    CAST(d.date_depot AS TIMESTAMPTZ)                                AS opened_at,
    CAST(d.date_traitement AS TIMESTAMPTZ)                           AS closed_at,
    CAST(NULL AS TIMESTAMPTZ)                                        AS due_at,
    CAST(NULL AS DECIMAL(14,2))                                      AS amount,
    CAST(NULL AS VARCHAR)                                            AS currency,
    'web'                                                            AS channel,
    '{"demarche": ' || CAST(d.demarche_number AS VARCHAR)
        || ', "champs": ' || COALESCE(d.champs, '[]') || '}'         AS details
FROM raw_demarches.dossiers AS d
LEFT JOIN raw_demarches.demarches AS m ON m.number = d.demarche_number
LEFT JOIN raw_demarches.deleted_dossiers AS s
       ON s.number = d.number AND s.date_supression >= d.date_derniere_modification
WHERE s.number IS NULL
