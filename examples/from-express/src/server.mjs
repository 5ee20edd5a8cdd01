// How the service ran before (and still can): `node examples/from-express/src/server.mjs`.
import { app } from './app.mjs';

const port = Number(process.env.PORT ?? 8080);
app.listen(port, '127.0.0.1', () => console.log(`tasks listening on http://127.0.0.1:${port}`));
