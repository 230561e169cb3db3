// A real authorization server for the host's OAuth tests: oidc-provider (a certified
// OpenID Connect / OAuth 2.0 server) on 127.0.0.1, with PKCE required, short token
// lifetimes, and refresh tokens rotating or not. The sign-in needs no person: an
// interaction signs in as `ann` and consents at once. Settings come from the environment:
//   ROTATE=1|0         whether a refresh hands out a new refresh token (default 1)
//   ACCESS_TTL=seconds how long an access token lives (default 60)
// It prints `listening <port>` when ready. Routes for tests, on the same port:
//   POST /test/revoke  destroys every grant (the user revoked the host's access)
//   GET  /test/stats   {"refreshes": n, "codes": n}: token requests served, by grant type
import Provider from "oidc-provider";

const rotate = (process.env.ROTATE ?? "1") === "1";
const accessTtl = Number(process.env.ACCESS_TTL ?? "60");
const grants = new Set();
const stats = { refreshes: 0, codes: 0 };

const configuration = {
  clients: [
    {
      client_id: "codex-host",
      application_type: "native",
      token_endpoint_auth_method: "none",
      redirect_uris: ["http://127.0.0.1/callback", "http://127.0.0.1/oauth/callback"],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
    },
    {
      client_id: "codex-host-confidential",
      client_secret: "a-client-secret-of-at-least-32-characters",
      token_endpoint_auth_method: "client_secret_post",
      redirect_uris: ["http://127.0.0.1:1/callback"],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
    },
  ],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false }, revocation: { enabled: true } },
  scopes: ["openid", "offline_access", "read"],
  ttl: { AccessToken: accessTtl, AuthorizationCode: 60, RefreshToken: 3600, Grant: 3600, Interaction: 600, Session: 600 },
  rotateRefreshToken: rotate,
  issueRefreshToken: async () => true,
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
};

const provider = new Provider("http://127.0.0.1", configuration);
provider.on("grant.success", (ctx) => {
  if (ctx.oidc.params.grant_type === "refresh_token") stats.refreshes += 1;
  if (ctx.oidc.params.grant_type === "authorization_code") stats.codes += 1;
});

// A provider that does not rotate sends no refresh token with a refreshed access token
// (oidc-provider would send the old one back).
provider.use(async (ctx, next) => {
  await next();
  if (!rotate && ctx.path === "/token" && ctx.body && typeof ctx.body === "object" && ctx.body.refresh_token && ctx.oidc?.params?.grant_type === "refresh_token") {
    delete ctx.body.refresh_token;
  }
});

provider.use(async (ctx, next) => {
  const interaction = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (interaction) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.prompt.name === "login") {
      await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: "ann" } }, { mergeWithLastSubmission: false });
      return;
    }
    // Consent: everything asked for.
    const grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    if (details.prompt.details.missingOIDCScope) grant.addOIDCScope(details.prompt.details.missingOIDCScope.join(" "));
    if (details.prompt.details.missingOIDCClaims) grant.addOIDCClaims(details.prompt.details.missingOIDCClaims);
    const grantId = await grant.save();
    grants.add(grantId);
    await provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  if (ctx.path === "/test/revoke" && ctx.method === "POST") {
    for (const id of grants) {
      const grant = await provider.Grant.find(id);
      if (grant) await grant.destroy();
    }
    grants.clear();
    ctx.body = { revoked: true };
    return;
  }
  if (ctx.path === "/test/stats") {
    ctx.body = stats;
    return;
  }
  await next();
});

const server = provider.listen(0, "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});
