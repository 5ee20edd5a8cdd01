/**
 * `berth/adapters`: move HTTP code between Lambda and servers without glue, and without Berth
 * running. Lambda handlers inside a server: `toNodeHttp`, `toExpress`, the Fastify plugin
 * `lambdaRoutes`. A server as a Lambda handler: `fromNodeHttp`, `fromExpress`.
 */
export { callHandler, type HandlerOptions, type LambdaHandler } from './call-handler.js';
export { fromExpress, fromNodeHttp, type ApiGatewayV2Result } from './from-server.js';
export { lambdaRoutes, toExpress, toNodeHttp, type LambdaRoutesOptions, type ToServerOptions } from './to-server.js';
