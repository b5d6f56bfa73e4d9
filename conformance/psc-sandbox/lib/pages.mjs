// TEST FIXTURE. The few HTML pages of the stand-in (French, like PSC's own pages). Every value is escaped.

export function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} — bac à sable Pro Santé Connect</title>
<style>
body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#1e1e1e}
.fixture{background:#fff3cd;border:1px solid #e0c060;padding:.5rem .75rem;font-size:.9rem}
fieldset{border:1px solid #ccc;margin:1rem 0}label{display:block;margin:.4rem 0}
button{font-size:1rem;padding:.5rem 1rem;margin-right:.5rem}
.approve{background:#000091;color:#fff;border:0}
</style>
</head>
<body>
<p class="fixture">Environnement de TEST : ceci est un bac à sable qui imite Pro Santé Connect pour les tests de Vigie.
Ce n'est pas Pro Santé Connect.</p>
${body}
</body>
</html>`;
}

export function interactionPage({ uid, clientId, scope, identities, error }) {
  const rows = identities
    .map(
      (id, i) => `<label><input type="radio" name="idnat" value="${esc(id.idnat)}"${i === 0 ? ' checked' : ''}>
 ${esc(id.label)} <small>(idNat ${esc(id.idnat)})</small></label>`,
    )
    .join('\n');
  return page(
    'Choisissez une identité de test',
    `<h1>Choisissez une identité de test</h1>
<p>Le service <strong>${esc(clientId)}</strong> demande une authentification (portée <code>${esc(scope)}</code>,
niveau <code>eidas1</code>).</p>
${error ? `<p role="alert"><strong>${esc(error)}</strong></p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/approve">
<fieldset><legend>Identité</legend>
${rows}
</fieldset>
<fieldset><legend>Moyen d'identification</legend>
<label><input type="radio" name="means" value="ecps" checked> e-CPS (application mobile)</label>
<label><input type="radio" name="means" value="card"> Carte CPS et code PIN</label>
</fieldset>
<button type="submit" class="approve">Approuver sur e-CPS</button>
</form>
<form method="post" action="/interaction/${esc(uid)}/abort">
<button type="submit">Refuser</button>
</form>`,
  );
}

export function messagePage(title, text) {
  return page(title, `<h1>${esc(title)}</h1>\n<p>${esc(text)}</p>`);
}

export function indexPage(issuer) {
  return page(
    'Bac à sable',
    `<h1>Bac à sable Pro Santé Connect</h1>
<p>Émetteur : <code>${esc(issuer)}</code></p>
<p><a href="${esc(issuer)}/.well-known/wallet-openid-configuration">Métadonnées (wallet-openid-configuration)</a></p>`,
  );
}
