import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { NO_TOKEN_HINT, SESSION_COOKIE, principalOf } from '../access.ts';
import { errorBody } from '../api-errors.ts';
import { errorResponseSchema } from '../api-schemas.ts';
import { API_ROLES } from '../api-tokens.ts';
import type { ApiContext } from '../context.ts';
import { safeNext } from '../sign-in-page.ts';
import type { SignInPageRenderer, SignInProblem } from '../sign-in-page.ts';

/** How long the browser keeps the sign-in cookie; revoking the token ends it at once anyway. */
export const SESSION_MAX_AGE_S = 30 * 86_400;

const sessionSchema = z
  .object({
    name: z.string().nullable().describe('The token\'s name; null for a client on the API\'s own machine while no token exists'),
    role: z.enum(API_ROLES),
    via: z.enum(['bearer', 'cookie', 'loopback']).describe('How this request was signed in'),
  })
  .describe('Who is calling');

const signInBodySchema = z.object({
  token: z.string().max(512).describe('An API token (`flowpilot tokens add <name> --role R` prints one)'),
  next: z.string().max(2000).optional().describe('Form posts only: the page to return to'),
  lang: z.string().max(16).optional().describe('Form posts only: the sign-in page\'s language'),
});

const isForm = (request: FastifyRequest): boolean => String(request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');

/** Sends the sign-in page (status 401: the page stands in for what was asked). */
export function sendSignInPage(signIn: SignInPageRenderer, request: FastifyRequest, reply: FastifyReply, problem: SignInProblem, lang?: string): FastifyReply {
  const query = request.query as { lang?: unknown } | undefined;
  const { html } = signIn.render({
    lang: lang ?? (typeof query?.lang === 'string' ? query.lang : undefined),
    acceptLanguage: request.headers['accept-language'],
    next: request.method === 'GET' ? request.url.replace(/([?&])lang=[^&]*&?/, '$1').replace(/[?&]$/, '') : '/',
    problem,
  });
  return reply.code(401).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').header('vary', 'accept-language').send(html);
}

/**
 * `/api/v1/session`: the dashboard's sign-in (SPEC section 8). POST takes a token, as JSON or
 * from the sign-in page's form, and sets it in an HttpOnly, SameSite=Strict cookie (Secure over
 * HTTPS); DELETE signs out; GET says who the caller is.
 */
export const sessionRoutes: FastifyPluginAsync<ApiContext> = async (app, { tokens, signIn }) => {
  // The sign-in form posts urlencoded; only these routes (this plugin's scope) accept it.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get(
    '/api/v1/session',
    { schema: { tags: ['access'], summary: 'Who is calling: the token\'s name and role', response: { 200: sessionSchema, 401: errorResponseSchema } } },
    async (request) => {
      const principal = principalOf(request);
      // The access hook lets no request here without a principal.
      return principal ?? { name: null, role: 'viewer' as const, via: 'loopback' as const };
    },
  );

  api.post(
    '/api/v1/session',
    {
      schema: {
        tags: ['access'],
        summary: 'Sign in: keep a token in a cookie for the dashboard',
        security: [],
        description:
          'Takes `{"token"}` as JSON (answers who it belongs to) or the sign-in page\'s form (answers 303 to the page it came from). ' +
          'Sets the cookie `flowpilot_token` (HttpOnly, SameSite=Strict, Path=/, Secure over HTTPS) for 30 days; revoking the token ends it at once. ' +
          'An unknown token: 401.',
        body: signInBodySchema,
        response: { 200: sessionSchema, 401: errorResponseSchema },
      },
    },
    async (request, reply) => {
      const { token, next, lang } = request.body;
      const form = isForm(request);
      const presented = token.trim();
      const found = presented && tokens?.hasTokens() ? tokens.verify(presented) : null;
      if (!found) {
        if (form) return sendSignInPageFor(request, reply, presented ? 'failed' : 'empty', next, lang);
        const message = tokens?.hasTokens()
          ? 'The token is unknown or was revoked. Check it, or ask an administrator for a new one'
          : `This FlowPilot has no API tokens, so there is nothing to sign in with: add one on the server (${NO_TOKEN_HINT})`;
        return reply.code(401).header('cache-control', 'no-store').send(errorBody('ERR_UNAUTHENTICATED', message));
      }
      reply.setCookie(SESSION_COOKIE, presented, {
        httpOnly: true,
        sameSite: 'strict',
        path: '/',
        secure: request.protocol === 'https',
        maxAge: SESSION_MAX_AGE_S,
      });
      reply.header('cache-control', 'no-store');
      if (form) return reply.redirect(safeNext(next), 303);
      return { name: found.name, role: found.role, via: 'cookie' as const };
    },
  );

  function sendSignInPageFor(request: FastifyRequest, reply: FastifyReply, problem: SignInProblem, next: string | undefined, lang: string | undefined): FastifyReply {
    const { html } = signIn.render({ lang, acceptLanguage: request.headers['accept-language'], next: safeNext(next), problem });
    return reply.code(401).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(html);
  }

  api.delete(
    '/api/v1/session',
    { schema: { tags: ['access'], summary: 'Sign out: forget the sign-in cookie (204)' } },
    async (request, reply) => {
      reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'strict', secure: request.protocol === 'https' });
      return reply.code(204).header('cache-control', 'no-store').send();
    },
  );
};
