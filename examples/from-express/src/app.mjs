// An ordinary Express service, as it ran in a container: nothing in it knows about Berth.
import express from 'express';
import { toExpress } from 'berth/adapters';
import { handler as quote } from './quote.mjs';

export const app = express();
const tasks = new Map();

app.get('/', (req, res) => res.json({ service: 'tasks', routes: ['GET /tasks', 'POST /tasks', 'GET /tasks/:id', 'POST /quote/:sku'] }));
app.get('/tasks', (req, res) => res.json([...tasks.values()]));
app.post('/tasks', express.json(), (req, res) => {
  if (typeof req.body?.title !== 'string' || req.body.title.trim() === '') return res.status(400).json({ message: 'title is required' });
  const task = { id: String(tasks.size + 1), title: req.body.title.trim(), done: false };
  tasks.set(task.id, task);
  res.status(201).cookie('last-task', task.id, { path: '/' }).json(task);
});
app.get('/tasks/:id', (req, res) => {
  const task = tasks.get(req.params.id);
  return task ? res.json(task) : res.status(404).json({ message: `no task ${req.params.id}` });
});
// A Lambda handler (API Gateway v2 event in, result out) mounted inside the Express app.
app.post('/quote/:sku', toExpress(quote));
