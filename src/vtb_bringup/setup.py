from glob import glob

from setuptools import find_packages, setup

package_name = 'vtb_bringup'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/config', glob('config/*.yaml') + glob('config/*.xml')),
        ('share/' + package_name + '/launch', glob('launch/*.py')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='vtb maintainers',
    maintainer_email='vtb@example.org',
    description='Launch files, configuration, the one-process runner, the demo and the vtb command line.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': ['vtb = vtb_bringup.cli:main'],
    },
)
