// The status API's OpenAPI 3.1 document, built from the same schemas the views are typed by (schemas.ts).
// Served at /api/v1/openapi.json; the heartbeat the operator sends to the platform is described under webhooks.
import { componentSchemas, STATUS_API_VERSION } from './schemas.ts';
import { EXPERIMENT_PHASES } from '../api/v1alpha1/experiment.ts';
import { DEPLOYMENT_PHASES } from '../api/v1alpha1/deployment.ts';
import { DEFAULT_LIMIT, MAX_LIMIT } from './pagination.ts';
import { HEARTBEAT_PATH } from '../platform-link/heartbeat.ts';

type Json = Record<string, unknown>;

const json = (schemaName: string, description: string): Json => ({
  description,
  headers: { ETag: { description: 'Digest of the body; send it back in If-None-Match to get 304 while nothing changed.', schema: { type: 'string' } } },
  content: { 'application/json': { schema: { $ref: `#/components/schemas/${schemaName}` } } },
});

const errors = (...codes: number[]): Json =>
  Object.fromEntries(codes.map((c) => [String(c), { $ref: `#/components/responses/E${c}` }]));

const common = (): Json => ({ '304': { $ref: '#/components/responses/NotModified' }, ...errors(400, 401, 403, 429) });

const query = (name: string, description: string, schema: Json): Json => ({ name, in: 'query', required: false, description, schema });

const pageParams = [
  query('limit', `Items per page, 1 to ${MAX_LIMIT}.`, { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT }),
  query('continue', 'The metadata.continue of the previous page, with the same filters.', { type: 'string' }),
  query('namespace', 'Only this namespace (project).', { type: 'string' }),
];
const ifNoneMatch = { name: 'If-None-Match', in: 'header', required: false, description: 'An ETag from an earlier answer.', schema: { type: 'string' } };

let built: Json | undefined;

export function openApiDocument(): Json {
  built ??= {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    info: {
      title: 'Arena on-prem operator status API',
      version: STATUS_API_VERSION,
      description:
        'Read-only status of an on-prem Arena training cluster for the Arena platform to poll: providers, resource classes, experiments, deployments and usage. Every answer comes from the operator\'s caches; poll with If-None-Match to get 304 while nothing changed.',
    },
    servers: [{ url: '/api/v1' }],
    security: [{ bearer: [] }],
    paths: {
      '/cluster': {
        get: {
          operationId: 'getCluster',
          summary: 'Providers, bundle, workers, GPUs, classes and counts of experiments and deployments per phase.',
          parameters: [ifNoneMatch],
          responses: { '200': json('ClusterStatus', 'The cluster summary; the same body the heartbeat carries.'), ...common() },
        },
      },
      '/resourceclasses': {
        get: {
          operationId: 'listResourceClasses',
          parameters: [ifNoneMatch],
          responses: { '200': json('ResourceClassList', 'Every resource class.'), ...common() },
        },
      },
      '/experiments': {
        get: {
          operationId: 'listExperiments',
          parameters: [
            ...pageParams,
            query('phase', 'Only these phases, comma-separated.', { type: 'string', examples: [EXPERIMENT_PHASES.join(',')] }),
            query('class', 'Only this resource class.', { type: 'string' }),
            ifNoneMatch,
          ],
          responses: { '200': json('ExperimentList', 'A page of experiments.'), ...common() },
        },
      },
      '/experiments/{namespace}/{name}': {
        get: {
          operationId: 'getExperiment',
          parameters: [
            { name: 'namespace', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'name', in: 'path', required: true, schema: { type: 'string' } },
            ifNoneMatch,
          ],
          responses: { '200': json('ExperimentResponse', 'The experiment with its checkpoints.'), ...common(), ...errors(404) },
        },
      },
      '/deployments': {
        get: {
          operationId: 'listDeployments',
          parameters: [...pageParams, query('phase', 'Only these phases, comma-separated.', { type: 'string', examples: [DEPLOYMENT_PHASES.join(',')] }), ifNoneMatch],
          responses: { '200': json('DeploymentList', 'A page of deployments.'), ...common() },
        },
      },
      '/usage': {
        get: {
          operationId: 'getUsage',
          parameters: [
            query('from', 'Window start: a UTC date (YYYY-MM-DD) or an RFC 3339 time; default 30 days before `to`.', { type: 'string' }),
            query('to', 'Window end, exclusive: a UTC date (the window then includes that whole day) or an RFC 3339 time; default now.', { type: 'string' }),
            query('namespace', 'Only this namespace.', { type: 'string' }),
            query('format', 'json (default) or csv: one row per UTC day and experiment, with a header row.', { type: 'string', enum: ['json', 'csv'] }),
          ],
          responses: {
            '200': {
              description: 'Usage within the window.',
              content: {
                'application/json': { schema: { $ref: '#/components/schemas/Usage' } },
                'text/csv': { schema: { type: 'string' } },
              },
            },
            ...common(),
          },
        },
      },
      '/openapi.json': {
        get: { operationId: 'getOpenApi', responses: { '200': { description: 'This document.', content: { 'application/json': { schema: { type: 'object' } } } }, ...errors(401, 403, 429) } },
      },
    },
    webhooks: {
      heartbeat: {
        post: {
          summary: `Sent by the operator to spec.platform.url + ${HEARTBEAT_PATH} every heartbeatIntervalSeconds, with the cluster token as a bearer token.`,
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['apiVersion', 'kind', 'trainingCluster', 'sentAt', 'status'],
                  properties: {
                    apiVersion: { const: STATUS_API_VERSION },
                    kind: { const: 'Heartbeat' },
                    trainingCluster: { type: 'string', description: 'The TrainingCluster sending it.' },
                    sentAt: { type: 'string', format: 'date-time' },
                    status: { $ref: '#/components/schemas/ClusterStatus' },
                  },
                },
              },
            },
          },
          responses: { '2XX': { description: 'Accepted; the PlatformConnected condition turns True.' } },
        },
      },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A token from the operator\'s status-API token Secret.' } },
      responses: {
        NotModified: { description: 'Nothing changed since the ETag sent in If-None-Match.' },
        E400: { description: 'A malformed query.', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        E401: { description: 'No bearer token.', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        E403: { description: 'A bearer token that is not accepted.', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        E404: { description: 'No such object.', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        E429: {
          description: 'Over the per-client rate limit.',
          headers: { 'Retry-After': { description: 'Seconds to wait.', schema: { type: 'integer' } } },
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
      // JSON first: TypeBox keeps its bookkeeping under symbol keys, which have no place in a published document.
      schemas: JSON.parse(JSON.stringify(componentSchemas)) as Json,
    },
  };
  return built;
}
