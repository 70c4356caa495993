from glob import glob

from setuptools import find_packages, setup

package_name = 'vtb_pose'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    package_data={package_name: ['data/*.npy']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/config', glob('config/*.yaml')),
        ('share/' + package_name + '/launch', glob('launch/*.py')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='vtb maintainers',
    maintainer_email='vtb@example.org',
    description='Head pose for vtb: PnP on face landmarks, filtering, TF frames per REP-155, RViz markers.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': ['pose_node = vtb_pose.entry:main'],
    },
)
