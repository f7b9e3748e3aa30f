import fastifyCompress from '@fastify/compress';
import fastifyCookie from '@fastify/cookie';
import fastifyHelmet from '@fastify/helmet';
import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import { registerAccess } from '../access.ts';
import type { ApiSettings } from '../options.ts';
import { sendSignInPage } from '../routes/session.ts';
import type { SignInPageRenderer } from '../sign-in-page.ts';

/**
 * What guards every route (SPEC section 8), on the root instance so that it applies to all:
 * security headers, response compression, cookies, the rate-limit store, and the access hook
 * (tokens, roles, the expensive-request limit). Returns the routes ROUTE_ACCESS does not declare.
 */
export async function registerSecurity(app: FastifyInstance, settings: ApiSettings, signIn: SignInPageRenderer): Promise<{ undeclaredRoutes: string[] }> {
  await app.register(fastifyHelmet, helmetOptions(Boolean(settings.https)));
  // Responses compressed when the client asks (the dashboard's files are compressed once, by their route);
  // request bodies are never inflated: the API takes small JSON only, and a zip bomb is not one.
  await app.register(fastifyCompress, { global: true, requestEncodings: ['identity'] });
  await app.register(fastifyCookie);
  await app.register(fastifyRateLimit, { global: false });
  const access = registerAccess(app, {
    tokens: settings.tokens,
    expensiveRatePerMinute: settings.expensiveRatePerMinute,
    clock: settings.clock,
    signInPage: (request, reply, problem) => sendSignInPage(signIn, request, reply, problem),
  });
  app.addHook('onReady', async () => {
    if (access.undeclaredRoutes.length > 0) app.log.warn({ routes: access.undeclaredRoutes }, 'routes missing from ROUTE_ACCESS need admin');
  });
  return access;
}

/**
 * Security headers (helmet): a CSP that allows this origin's scripts, styles and data URIs
 * (Swagger UI's icons) and nothing else; no frames. HSTS and upgrade-insecure-requests only
 * over HTTPS: on plain HTTP to a LAN address they would send the browser to a port that has no TLS.
 */
function helmetOptions(https: boolean) {
  return {
    contentSecurityPolicy: {
      useDefaults: true,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        // uPlot and Swagger UI set style attributes.
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        frameAncestors: ["'none'"],
        formAction: ["'self'"],
        baseUri: ["'self'"],
        upgradeInsecureRequests: https ? [] : null,
      },
    },
    frameguard: { action: 'deny' as const },
    hsts: https ? { maxAge: 180 * 86_400, includeSubDomains: false } : false,
  };
}

