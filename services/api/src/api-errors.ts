import { ERROR_CATALOGUE, FlowPilotError } from '@flowpilot/schema';
import type { ErrorCode } from '@flowpilot/schema';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';

/**
 * Every error leaves as `{"error": {"code", "message"}}` with a catalogue code (SPEC section 5,
 * STYLE habit 5): 4xx say what the caller should change; 5xx never leak internals, the log
 * has the details.
 */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

export function errorBody(code: ErrorCode, message?: string): ErrorBody {
  return { error: { code, message: message || ERROR_CATALOGUE[code].message } };
}

/** A 400 for a parameter that parsed but makes no sense (e.g. `to` before `from`). */
export function validationError(sentence: string): FlowPilotError {
  return new FlowPilotError('ERR_VALIDATION', sentence);
}

const CONTEXT_NAMES: Record<string, string> = {
  querystring: 'Query parameter',
  params: 'Path parameter',
  headers: 'Header',
  body: 'Body field',
};

interface ValidationIssue {
  instancePath: string;
  message?: string;
  params?: unknown;
}

/** A zod issue with `params: { sentence: true }` is a whole sentence that names its parameters (window.ts): printed as it is. */
const isSentence = (issue: ValidationIssue): boolean => (issue.params as { params?: { sentence?: unknown } } | undefined)?.params?.sentence === true;

/** "Query parameter "from" must be …": one sentence per problem, each naming its parameter. */
function describeValidation(error: FastifyError & { validation: ValidationIssue[] }): string {
  const where = CONTEXT_NAMES[error.validationContext ?? ''] ?? 'Parameter';
  const sentences = error.validation.filter(isSentence);
  if (sentences.length === error.validation.length) return sentences.map((issue) => issue.message ?? 'is invalid').join('. ');
  return error.validation
    .map((issue) => {
      const name = issue.instancePath.replace(/^\//, '').replace(/\//g, '.');
      const message = issue.message ?? 'is invalid';
      if (isSentence(issue)) return message;
      if (!name) return `${where}s: ${message}`;
      return /^(must|is|should)\b/.test(message) ? `${where} "${name}" ${message}` : `${where} "${name}": ${message}`;
    })
    .join('. ')
    .concat('.');
}

/** A catalogue code carried by a FlowPilotError or an InfluxError (duck-typed: both have one). */
function catalogueCode(error: unknown): ErrorCode | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && Object.hasOwn(ERROR_CATALOGUE, code) ? (code as ErrorCode) : undefined;
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    if (hasZodFastifySchemaValidationErrors(error)) {
      return reply.code(400).send(errorBody('ERR_VALIDATION', describeValidation(error)));
    }

    const code = catalogueCode(error);
    if (code) {
      const status: number = ERROR_CATALOGUE[code].status;
      if (status < 500) {
        const detail = (error as { detail?: unknown }).detail;
        return reply.code(status).send(errorBody(code, typeof detail === 'string' && detail ? detail : undefined));
      }
      // The report's font is missing on this server: what to install is for its operator to read, and says nothing of the code.
      if (code === 'ERR_REPORT_FONT') {
        request.log.error({ err: error }, 'a report font is not installed');
        return reply.code(status).send(errorBody(code, (error as Error).message));
      }
      if (code === 'ERR_INFLUX_UNAVAILABLE' || code === 'ERR_NOT_READY') {
        request.log.warn({ err: error }, 'a dependency is unavailable');
        return reply.code(503).send(errorBody(code));
      }
    }

    // A fastify 4xx (malformed URL, unsupported media type, body too large…): the caller's mistake,
    // and fastify's own message is safe to show.
    const fastifyStatus = (error as { statusCode?: unknown } | null)?.statusCode;
    if (!code && typeof fastifyStatus === 'number' && fastifyStatus >= 400 && fastifyStatus < 500) {
      const message = (error as Error).message;
      return reply.code(fastifyStatus).send(errorBody(fastifyStatus === 404 ? 'ERR_NOT_FOUND' : 'ERR_VALIDATION', message));
    }

    request.log.error({ err: error }, 'request failed');
    return reply.code(500).send(errorBody('ERR_INTERNAL'));
  });

  app.setNotFoundHandler((request, reply) => {
    const path = (request.url.split('?')[0] ?? '').slice(0, 200);
    reply.code(404).send(errorBody('ERR_NOT_FOUND', `No route ${request.method} ${path}. See /docs for the API.`));
  });
}

/** Errors fastify meets before routing (a malformed URL): the same shape as every other error. */
export function frameworkErrorHandler(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400;
  reply.code(status).send(errorBody('ERR_VALIDATION', error.message));
}
