export { loadSettings, DEFAULT_SETTINGS, type Settings } from './settings.ts';
export { loadPilot } from './run-services.ts';
