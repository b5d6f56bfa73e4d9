// TEST FIXTURE. The built-in test professionals of the PSC stand-in, with the full userinfo shape of
// /work/shared/reference/psc.md §2 (the BAS userinfo used as a fixture by public PSC clients).
// None of these people exist; the identifiers only follow the idNat_PS rules (`8`+RPPS, `0`+ADELI).

const ROLE_OID = '1.2.250.1.213.1.1.5.5'; // TRE_G15 profession codes, as PSC writes them in SubjectRole
const SECTOR_OID = '1.2.250.1.71.4.2.4'; // TRE_R02 secteur d'activité
const PALIER = 'APPPRIP3^1.2.250.1.213.1.5.1.1.1';

// A stable, PSC-looking `sub` (`f:<uuid>:<idnat>`, §2): the same idNat always gets the same sub.
export const SUB_PREFIX = 'f:550dc1c8-d97b-4b1b-8f61-9b4e0c2b7a11:';

export function subFor(idnat) {
  return `${SUB_PREFIX}${idnat}`;
}

const HOSPITAL = {
  sector: 'SA01',
  structureId: 'R10100000001',
  name: 'CENTRE HOSPITALIER DE DEMONSTRATION VIGIE',
  finessSite: '750000001',
  finessEj: '750000019',
  siret: '26750000100011',
  oldId: '3750000001',
  authority: 'ARS/ARS/ARS',
  postcode: '75013',
  city: 'PARIS',
};

function activity(structure, extra = {}) {
  return {
    codeModeExercice: extra.mode ?? 'S',
    codeSecteurDactivite: structure.sector,
    codeSectionPharmacien: extra.section ?? '',
    codeRole: extra.role ?? '',
    codeGenreActivite: 'GENR01',
    numeroSiretSite: structure.siret ?? '',
    numeroSirenSite: structure.siret ? structure.siret.slice(0, 9) : '',
    numeroFinessSite: structure.finessSite ?? '',
    numeroFinessetablissementJuridique: structure.finessEj ?? '',
    identifiantTechniqueDeLaStructure: structure.structureId,
    raisonSocialeSite: structure.name,
    enseigneCommercialeSite: '',
    complementDestinataire: '',
    complementPointGeographique: '',
    numeroVoie: '1',
    indiceRepetitionVoie: '',
    codeTypeDeVoie: 'R',
    libelleVoie: 'DE LA DEMONSTRATION',
    mentionDistribution: '',
    bureauCedex: `${structure.postcode} ${structure.city}`,
    codePostal: structure.postcode,
    codeCommune: '',
    codePays: '99000',
    telephone: '',
    telephone2: '',
    telecopie: '',
    adresseEMail: '',
    codeDepartement: structure.postcode.slice(0, 2),
    ancienIdentifiantDeLaStructure: structure.oldId ?? '',
    autoriteDenregistrement: structure.authority,
  };
}

function professional(p) {
  const structure = p.structure ?? HOSPITAL;
  const exercice = {
    codeProfession: p.profession,
    codeCategorieProfessionnelle: 'C',
    codeCiviliteDexercice: p.civiliteExercice ?? '',
    nomDexercice: p.family,
    prenomDexercice: p.given,
    codeTypeSavoirFaire: p.specialty ? 'S' : '',
    codeSavoirFaire: p.specialty ?? '',
    activities: [activity(structure, p.activity)],
  };
  return {
    idnat: p.idnat,
    label: p.label,
    claims: {
      sub: subFor(p.idnat),
      preferred_username: p.idnat,
      SubjectNameID: p.idnat,
      given_name: p.given,
      family_name: p.family,
      codeCivilite: p.civilite,
      email_verified: false,
      Secteur_Activite: `${structure.sector}^${SECTOR_OID}`,
      SubjectOrganization: structure.name,
      SubjectOrganizationID: structure.structureId,
      SubjectRole: [`${p.profession}^${ROLE_OID}`],
      Palier_Authentification: PALIER,
      PSI_Locale: '1.2.250.1.213.1.3.1.1',
      UITVersion: '1.0',
      Acces_Regulation_Medicale: 'FAUX',
      Mode_Acces_Raison: '',
      otherIds: p.otherIds,
      SubjectRefPro: { codeCivilite: p.civilite, exercices: [exercice] },
    },
  };
}

export const BUILTIN_IDENTITIES = [
  professional({
    idnat: '810001234567',
    label: 'Dr Marie Durand, médecin (médecine générale), RPPS',
    given: 'MARIE',
    family: 'DURAND',
    civilite: 'MME',
    civiliteExercice: 'DR',
    profession: '10',
    specialty: 'SM26',
    otherIds: [
      { identifiant: '810001234567', origine: 'RPPS', qualite: 1 },
      { identifiant: '10001234567', origine: 'RPPS', qualite: 1 },
    ],
  }),
  professional({
    idnat: '810009876543',
    label: 'Paul Martin, pharmacien, RPPS',
    given: 'PAUL',
    family: 'MARTIN',
    civilite: 'M',
    profession: '21',
    activity: { section: 'H' },
    otherIds: [{ identifiant: '810009876543', origine: 'RPPS', qualite: 1 }],
  }),
  professional({
    idnat: '810005555555',
    label: 'Julie Bernard, infirmière, RPPS',
    given: 'JULIE',
    family: 'BERNARD',
    civilite: 'MME',
    profession: '60',
    otherIds: [{ identifiant: '810005555555', origine: 'RPPS', qualite: 1 }],
  }),
  professional({
    idnat: '0751234567',
    label: 'Luc Petit, masseur-kinésithérapeute, ADELI',
    given: 'LUC',
    family: 'PETIT',
    civilite: 'M',
    profession: '70',
    activity: { mode: 'L' },
    structure: {
      sector: 'SA07',
      structureId: 'R75123456701',
      name: 'CABINET DE KINESITHERAPIE PETIT',
      authority: 'ARS/ARS/ARS',
      postcode: '75011',
      city: 'PARIS',
    },
    otherIds: [
      { identifiant: '0751234567', origine: 'ADELI', qualite: 1 },
      { identifiant: '751234567', origine: 'ADELI', qualite: 1 },
    ],
  }),
  professional({
    idnat: '810000000001',
    label: 'Inconnu Absent, médecin (inconnu de Vigie)',
    given: 'INCONNU',
    family: 'ABSENT',
    civilite: 'M',
    civiliteExercice: 'DR',
    profession: '10',
    specialty: 'SM26',
    otherIds: [{ identifiant: '810000000001', origine: 'RPPS', qualite: 1 }],
  }),
];

// Identities given in a config file: `{ "idnat", "label"?, "claims": {...} }`, or a short form
// `{ "idnat", "given_name", "family_name", "profession", "specialty"? }` expanded to the full shape.
export function identitiesFromConfig(list) {
  if (!Array.isArray(list) || list.length === 0) {
    throw new Error('config: "identities" must be a non-empty array when present');
  }
  return list.map((entry, i) => {
    if (!entry || typeof entry.idnat !== 'string' || !/^(0|1|3|4|5|6|8)\d+/.test(entry.idnat)) {
      throw new Error(`config: identities[${i}].idnat must be an idNat_PS (0|1|3|4|5|6|8 then digits)`);
    }
    if (entry.claims) {
      const claims = {
        sub: subFor(entry.idnat),
        preferred_username: entry.idnat,
        SubjectNameID: entry.idnat,
        ...entry.claims,
      };
      return { idnat: entry.idnat, label: entry.label ?? entry.idnat, claims };
    }
    if (
      typeof entry.given_name !== 'string' ||
      typeof entry.family_name !== 'string' ||
      typeof entry.profession !== 'string'
    ) {
      throw new Error(`config: identities[${i}] needs "claims", or "given_name", "family_name" and "profession"`);
    }
    return professional({
      idnat: entry.idnat,
      label: entry.label ?? `${entry.given_name} ${entry.family_name}`,
      given: entry.given_name,
      family: entry.family_name,
      civilite: entry.civilite ?? '',
      profession: entry.profession,
      specialty: entry.specialty,
      otherIds: [{ identifiant: entry.idnat, origine: entry.idnat.startsWith('0') ? 'ADELI' : 'RPPS', qualite: 1 }],
    });
  });
}

// Every claim name the stand-in may release for `scope_all` (oidc-provider only releases listed ones).
export const SCOPE_ALL_CLAIMS = [
  'preferred_username',
  'SubjectNameID',
  'given_name',
  'family_name',
  'codeCivilite',
  'email_verified',
  'Secteur_Activite',
  'SubjectOrganization',
  'SubjectOrganizationID',
  'SubjectRole',
  'Palier_Authentification',
  'PSI_Locale',
  'UITVersion',
  'Acces_Regulation_Medicale',
  'Mode_Acces_Raison',
  'otherIds',
  'SubjectRefPro',
];
