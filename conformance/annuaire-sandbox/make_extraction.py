#!/usr/bin/env python3
"""Writes the test extraction `extraction.txt`: the RPPS PS_LibreAcces personne-activité file's
2026 header (56 names, reference annuaire-sante.md §1) and a few dozen made-up professionals,
`|`-separated with the trailing `|`, UTF-8. Run it again after editing PEOPLE; the file is committed."""
import pathlib

CS = " (coord. structure)"
HEADER = (
    ["Type d'identifiant PP", "Identifiant PP", "Identification nationale PP"]
    + ["Code civilité d'exercice", "Libellé civilité d'exercice", "Code civilité", "Libellé civilité"]
    + ["Nom d'exercice", "Prénom d'exercice"]
    + ["Code profession", "Libellé profession", "Code catégorie professionnelle", "Libellé catégorie professionnelle"]
    + ["Code type savoir-faire", "Libellé type savoir-faire", "Code savoir-faire", "Libellé savoir-faire"]
    + ["Code mode exercice", "Libellé mode exercice"]
    + ["Numéro SIRET site", "Numéro SIREN site", "Numéro FINESS site", "Numéro FINESS établissement juridique"]
    + ["Identifiant technique de la structure", "Raison sociale site", "Enseigne commerciale site"]
    + [n + CS for n in ["Complément destinataire", "Complément point géographique", "Numéro Voie",
                        "Indice répétition voie", "Code type de voie", "Libellé type de voie", "Libellé Voie",
                        "Mention distribution", "Bureau cedex", "Code postal", "Code commune", "Libellé commune",
                        "Code pays", "Libellé pays", "Téléphone", "Téléphone 2", "Télécopie", "Adresse e-mail"]]
    + ["Code Département (structure)", "Libellé Département (structure)", "Ancien identifiant de la structure"]
    + ["Autorité d'enregistrement", "Code secteur d'activité", "Libellé secteur d'activité"]
    + ["Code section tableau pharmaciens", "Libellé section tableau pharmaciens", "Code rôle", "Libellé rôle"]
    + ["Code genre activité", "Libellé genre activité"]
)
assert len(HEADER) == 56, len(HEADER)

PROFESSIONS = {"10": ("Médecin", "CNOM/CNOM/CNOM"), "60": ("Infirmier", "ONI/ONI/ONI"),
               "21": ("Pharmacien", "CNOP/CNOP/CNOP"), "50": ("Sage-Femme", "CNOSF/CNOSF/CNOSF"),
               "70": ("Masseur-Kinésithérapeute", "CNOMK/CNOMK/CNOMK")}
SPECIALTIES = {"10": ("S", "Spécialité ordinale", "SM54", "Qualifié en Médecine Générale"), "60": ("", "", "", "")}

# (RPPS, civilité, family, given, profession, structure FINESS, mode)
PEOPLE = [
    ("10100000045", "MME", "MARTIN", "Camille", "60", "760000018", "S"),  # demo.infirmiere: strong
    ("10100000052", "M", "MARTIN", "Camille", "10", "750000001", "L"),    # namesake, other profession
    ("10100000060", "MME", "LAMBERT", "Sophie", "60", "760000018", "S"),  # demo.rh: no profession known → weak
    ("10100000078", "MME", "LEFÈVRE", "Zoé", "10", "760000018", "S"),     # two namesakes, same profession
    ("10100000086", "MME", "LEFEVRE", "Zoe", "10", "690000002", "L"),     #   → two weak proposals
    ("10100000094", "M", "N'DIAYE-KOUAMÉ", "Jean-Noël", "10", "760000018", "S"),
    ("10100000102", "MME", "GARNIER", "Inès", "50", "760000018", "S"),
    ("10100000110", "M", "ROUSSEAU", "Théo", "21", "760000018", "S"),
]
PEOPLE += [(f"101000{n:05d}", "M" if n % 2 else "MME", f"NOM{n}", f"Prénom{n}", ["10", "60", "21"][n % 3],
            "760000018", "S") for n in range(200, 230)]


def line(rpps, civ, family, given, prof, finess, mode):
    label, authority = PROFESSIONS[prof]
    tsf, ltsf, sf, lsf = SPECIALTIES.get(prof, ("", "", "", ""))
    mode_label = {"S": "Salarié", "L": "Libéral"}[mode]
    civ_label = {"M": "Monsieur", "MME": "Madame"}[civ]
    values = ["8", rpps, "8" + rpps, "DR" if prof == "10" else "", "Docteur" if prof == "10" else "", civ, civ_label,
              family, given, prof, label, "C", "Civil", tsf, ltsf, sf, lsf, mode, mode_label,
              "", "", finess, "760780239", "R10000000" + finess[-3:], "CH HENRI EY", "",
              "", "", "12", "", "R", "Rue", "DE LA REPUBLIQUE", "", "76000 ROUEN", "76000", "76540", "Rouen",
              "99000", "France", "0232000000", "", "", "",
              "76", "Seine-Maritime", "1" + finess, authority, "SA01", "Hôpitaux Publics", "", "", "FON-AU",
              "Fonction autre", "GENR01", "Activité standard"]
    assert len(values) == len(HEADER), len(values)
    return "|".join(values) + "|"


out = "|".join(HEADER) + "|\n" + "".join(line(*p) + "\n" for p in PEOPLE)
pathlib.Path(__file__).with_name("extraction.txt").write_text(out, encoding="utf-8")
