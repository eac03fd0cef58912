import { render } from 'preact';
import { App } from './components/App';
import { parseRoute } from './router';
import { connect, loadSnapshot } from './store';
import './styles.css';

const route = parseRoute(location.pathname);
if (route.snapshotId) loadSnapshot(route.snapshotId);
else connect();

render(<App />, document.getElementById('root')!);
