// The only file added for Berth: the Express app as a Lambda-style handler.
import { fromExpress } from 'berth/adapters';
import { app } from './app.mjs';

export const handler = fromExpress(app);
