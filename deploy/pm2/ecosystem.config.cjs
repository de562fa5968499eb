// PM2 runs the native binary as it ran the Node worker: `pm2 start deploy/pm2/ecosystem.config.cjs`.
// kill_timeout must exceed YW_SHUTDOWN_TIMEOUT_S so running jobs finish or are failed back first.
module.exports = {
  apps: [
    {
      name: 'yesod-worker',
      script: '/opt/yesod-worker/bin/yesod-worker',
      args: 'run --device auto',
      interpreter: 'none',
      exec_mode: 'fork',
      instances: 1,
      kill_timeout: 30000,
      autorestart: true,
      stop_exit_codes: [2],
      env: {
        NODE_ENV: 'production',
        WORKER_CONCURRENCY: '4',
        YW_SHUTDOWN_TIMEOUT_S: '10',
      },
    },
  ],
};
